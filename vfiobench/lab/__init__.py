"""The emulated VFIO lab: real vfio-pci, KVM and QEMU code paths on a machine without VFIO hardware.

Three levels (LAB-NOTES.md has the verified facts behind every choice)::

    L0  this host: qemu-system-x86_64 -accel tcg,thread=single, q35 + intel-iommu, ivshmem-doorbell
        (vfiobench.lab.vm, served by vfiobench.lab.ivshmem), the 9p share, the console log
    L1  Debian bookworm guest (vfiobench.lab.image): init-lab.sh runs /share/job.sh, i.e.
        vfiobench.lab.job: modprobe kvm_amd vfio-pci, bind ivshmem to vfio-pci, then per cell
    L2  qemu-system-x86_64 -accel kvm|tcg -S -qtest unix:... -device vfio-pci,host=<ivshmem>
        driven by vfiobench.lab.guest (the guest driver), traced by vfiobench.probes in L1

The host side (:mod:`vfiobench.lab.runner`) writes the share, boots L1 once for any number of cells
(:mod:`vfiobench.lab.cell`: accelerator × workload × probed or not; the workloads are named in
:mod:`vfiobench.lab.workloads`) and turns each cell into a run (:mod:`vfiobench.lab.results`) whose
``checks`` compare the probe counts with QEMU's trace log, the workload's own counters and L1's
interrupt count (:mod:`vfiobench.lab.checks`).

Example:
    >>> from pathlib import Path
    >>> from vfiobench.lab.runner import plan_cells, run_lab                        # doctest: +SKIP
    >>> cells = plan_cells(["kvm", "tcg"], ["mask-every-irq", "no-mask"], cycles=101)  # doctest: +SKIP
    >>> lab = run_lab(cells, Path("data/runs/lab"))   # one boot, four runs        # doctest: +SKIP

or ``vfiobench lab run --accel kvm --accel tcg --workload mask-every-irq --workload no-mask
--cycles 101 --out data/runs/lab``. Everything heavy (image build, boots) should run under
``flock /tmp/vfiobench-heavy.lock`` on shared 2-core machines.
"""
