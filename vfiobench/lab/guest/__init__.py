"""The L2 guest of the emulated lab: a scripted MSI-X driver over QEMU's qtest protocol.

The L2 QEMU runs with ``-S`` (its vCPUs never run) and ``-qtest unix:PATH``; the qtest client is
the guest. One module per job:

- :mod:`~vfiobench.lab.guest.qtest`: the line protocol (:class:`QtestSession`);
- :mod:`~vfiobench.lab.guest.pci`: config space through ports 0xcf8/0xcfc, BAR assignment,
  capabilities;
- :mod:`~vfiobench.lab.guest.ivshmem`: the ivshmem-doorbell device as a driver sees it (MSI-X
  vectors pointed at guest RAM, doorbell triggers, mask/unmask, PBA reads);
- :mod:`~vfiobench.lab.guest.watch`: how an interrupt is seen delivered (guest RAM, or L1's
  ``/proc/interrupts`` on the KVM irqfd path) or owed in a mask window (the PBA, or QEMU's trace log);
- :mod:`~vfiobench.lab.guest.run`: the workloads themselves (:func:`run_workload`, its samples,
  counters and phases);
- :mod:`~vfiobench.lab.guest.l2`: the L2 QEMU process and its command line (:class:`L2Qemu`).

The workload names and parameters are in :mod:`vfiobench.lab.workloads`, which imports none of
this. Everything here runs inside L1 with Debian's python3: the standard library and numpy only.

Example (inside L1, the device bound to vfio-pci)::

    from vfiobench.lab.guest.l2 import L2Qemu, l2_cmdline
    from vfiobench.lab.guest.run import run_workload
    from vfiobench.lab.workloads import WorkloadParams

    cmd = lambda sock: l2_cmdline("qemu-system-x86_64", "tcg", sock, "0000:00:03.0")
    with L2Qemu(cmd, Path("/tmp/l2")) as l2:
        res = run_workload(l2.session, WorkloadParams("mask-every-irq", cycles=101))
"""
