"""The auto-detection series (``msix-mask-auto``) in the lab: exact counts before and after the switch.

Once per lab release whose QEMU source builds: the release's QEMU with the series runs as L2 in the
release's L1, with the threshold lowered to 4 masks (``x-msix-mask-threshold=4``) so the switch
comes early in 31 cycles. The guest's set-up masks the vector too, and those masks count: the
switch comes at the 5th mask overall. Masking guests: stock behaviour until then, the switch (one
SET_IRQS under KVM to move the vector to QEMU's eventfd, one PBA enable that stays), then nothing
per interrupt: no SET_IRQS, no PBA toggle, no route commit, and every interrupt
delivered with its pending bit seen (checked by the lab against QEMU's trace log and the
workload's counters). A guest that does not mask: the same counts as the build with the switch
off (no ioctl, no toggle, every interrupt through the KVM bypass). A burst guest on two vectors:
each vector detected once, every check passing.
"""

from __future__ import annotations

import dataclasses

import pytest
from kernel_skips import unexplained_failures
from qemu_lab_helpers import boot_cells, measure_counts

from vfiobench.qemu import build as qb
from vfiobench.qemu.patchset import SERIES_NAME
from vfiobench.store import Run

pytestmark = [pytest.mark.qemubuild, pytest.mark.lab, pytest.mark.root]

CYCLES = 31
THRESHOLD = 4
AUTO = ["-global", "vfio-pci.x-msix-mask-auto=on", "-global", f"vfio-pci.x-msix-mask-threshold={THRESHOLD}"]
OFF = ["-global", "vfio-pci.x-msix-mask-auto=off"]

#: run name -> (accel, workload, qemu args, vectors)
CELLS: dict[str, tuple[str, str, list[str], list[int]]] = {
    "auto-kvm": ("kvm", "mask-every-irq", AUTO, [0]),
    "auto-tcg": ("tcg", "mask-every-irq", AUTO, [0]),
    "auto-nomask-kvm": ("kvm", "no-mask", AUTO, [0]),
    "off-nomask-kvm": ("kvm", "no-mask", OFF, [0]),
    "auto-burst-tcg": ("tcg", "burst", AUTO, [0, 1]),
}


@pytest.fixture(scope="session")
def auto_runs(
    release: str, auto_build: qb.BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Run]:
    from vfiobench.lab.runner import plan_cells

    cells = []
    for name, (accel, workload, args, vectors) in CELLS.items():
        (cell,) = plan_cells(
            [accel],
            [workload],
            cycles=CYCLES if workload != "burst" else 11,
            vectors=vectors,
            burst=3,
            probes=True,
            qemu=str(auto_build.binary),
            qemu_args=args,
            variant=name,
        )
        cells.append(dataclasses.replace(cell, name=name, patches=[SERIES_NAME]))
    return boot_cells(cells, release, tmp_path_factory.mktemp(f"lab-auto-{release}") / "runs")


def _stock_cycles(run: Run) -> int:
    """Measured cycles before the switch: the threshold, less the masks the guest's set-up made."""
    trace = run.table("qemu_trace")
    setup = int(((trace["event"] == "vfio_msix_vector_release") & (trace["phase"] == "setup")).sum())
    assert setup <= 1
    return THRESHOLD - setup


def test_every_auto_run_completes_and_passes_its_checks(auto_runs: dict[str, Run], release: str) -> None:
    assert sorted(auto_runs) == sorted(CELLS)
    for name, run in auto_runs.items():
        assert run.meta.status == "complete", (name, run.meta.error)
        assert run.meta.labels["release"] == release
        assert unexplained_failures(run.meta.checks, run.meta.host.kernel_release) == [], name
    names = {c.name for c in auto_runs["auto-kvm"].meta.checks}
    assert "trace: after detection, every SET_IRQS kept" in names  # the switch's own checks ran


@pytest.mark.parametrize("accel", ["kvm", "tcg"])
def test_masking_guest_exact_counts_before_and_after_the_switch(
    auto_runs: dict[str, Run], accel: str
) -> None:
    run = auto_runs[f"auto-{accel}"]
    before = _stock_cycles(run)
    probes, trace, counters = measure_counts(run)
    assert counters["triggered"] == counters["delivered"] == counters["pba_seen"] == CYCLES
    assert trace["vfio_msix_mask_auto"] == 1
    # stock for before cycles; at the switch one enable that stays (and under KVM one SET_IRQS
    # moving the vector to QEMU's eventfd); after it, nothing per interrupt
    assert probes["pba_toggle"] == 2 * before + 1
    per_cycle = 2 if accel == "kvm" else 1
    assert probes["set_irqs_ioctl"] == probes["set_vector_signal"] == per_cycle * before + (accel == "kvm")
    kept = per_cycle * (CYCLES - before) - (accel == "kvm")
    assert trace["vfio_msix_trigger_kept"] == kept
    assert probes["kvm_ioctls.gsi_routing"] == (before if accel == "kvm" else 0)
    # every masked interrupt taken by QEMU, its pending bit re-asserted on unmask
    assert trace["vfio_msi_interrupt"] == CYCLES


def test_guest_that_does_not_mask_keeps_the_bypass_and_pays_nothing(auto_runs: dict[str, Run]) -> None:
    auto, trace, counters = measure_counts(auto_runs["auto-nomask-kvm"])
    off, _, _ = measure_counts(auto_runs["off-nomask-kvm"])
    assert counters["triggered"] == counters["delivered"] == CYCLES
    assert trace.get("vfio_msix_mask_auto", 0) == 0
    for key in ("set_irqs_ioctl", "pba_toggle", "kvm_ioctls.gsi_routing", "kvm_ioctls.signal_msi"):
        assert auto[key] == off[key] == 0, key
    assert auto["irq_path.kvm_msi"] == off["irq_path.kvm_msi"] == CYCLES  # KVM irqfd injections


def test_burst_on_two_vectors_detects_each_vector_once(auto_runs: dict[str, Run]) -> None:
    run = auto_runs["auto-burst-tcg"]
    _, _, counters = measure_counts(run)
    assert counters["delivered"] == counters["masks"] == 2 * 11
    whole = run.table("qemu_trace")
    detected = whole.loc[whole["event"] == "vfio_msix_mask_auto", "args"].tolist()
    assert len(detected) == 2 and {d.split("vector ")[1].split()[0] for d in detected} == {"0", "1"}
