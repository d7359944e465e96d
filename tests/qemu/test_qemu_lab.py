"""The patched QEMU in the emulated lab: each property does what it says, counted three ways.

Once per lab release (the ``release`` fixture of ``conftest.py``): that release's all-patches
build (QEMU 7.2 built on this machine for bookworm, 10.0 built in a trixie chroot for trixie) runs
as L2 in that release's L1, which is also what shows the binary runs with the release's libraries.
One L1 boot runs the all-patches build as L2 with the properties off (stock behaviour), with
``x-pba-always-on=on``, ``x-msix-fd-cache=on`` and ``x-pba-disable=on``; probes (SET_IRQS ioctls, the kernel's
``vfio_msi_set_vector_signal``, ``memory_region_set_enabled`` on the PBA), QEMU's own trace log
and the workload's counters must agree with what each property promises. A prime number of
cycles (31), so per-cycle counts cannot come out right by accident.

``x-pba-disable`` is for guests that never read the PBA, so it runs under ``mask-no-pba`` (mask,
trigger, wait until QEMU took the interrupt, unmask), beside the same guest on the stock
behaviour; ``mask-every-irq`` would wait for a pending bit that property no longer emulates.
"""

from __future__ import annotations

import dataclasses

import pytest
from kernel_skips import unexplained_failures
from qemu_lab_helpers import boot_cells, measure_counts

from vfiobench.qemu import build as qb
from vfiobench.store import Run

pytestmark = [pytest.mark.qemubuild, pytest.mark.lab, pytest.mark.root]

CYCLES = 31

#: run name -> (accel, -global vfio-pci.<property>=on or None, workload)
CELLS: dict[str, tuple[str, str | None, str]] = {
    "off-tcg": ("tcg", None, "mask-every-irq"),
    "off-kvm": ("kvm", None, "mask-every-irq"),
    "pba-always-on-kvm": ("kvm", "x-pba-always-on", "mask-every-irq"),
    "pba-always-on-tcg": ("tcg", "x-pba-always-on", "mask-every-irq"),
    "msix-fd-cache-tcg": ("tcg", "x-msix-fd-cache", "mask-every-irq"),
    "msix-fd-cache-kvm": ("kvm", "x-msix-fd-cache", "mask-every-irq"),
    "off-nopba-tcg": ("tcg", None, "mask-no-pba"),
    "off-nopba-kvm": ("kvm", None, "mask-no-pba"),
    "pba-disable-tcg": ("tcg", "x-pba-disable", "mask-no-pba"),
    "pba-disable-kvm": ("kvm", "x-pba-disable", "mask-no-pba"),
}


@pytest.fixture(scope="session")
def variant_runs(
    release: str, all_patches_build: qb.BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Run]:
    from vfiobench.lab.runner import plan_cells

    cells = []
    for name, (accel, prop, workload) in CELLS.items():
        args = ["-global", f"vfio-pci.{prop}=on"] if prop else []
        (cell,) = plan_cells(
            [accel],
            [workload],
            cycles=CYCLES,
            probes=True,
            qemu=str(all_patches_build.binary),
            qemu_args=args,
            variant=name.rsplit("-", 1)[0],
        )
        cells.append(dataclasses.replace(cell, name=name, patches=list(all_patches_build.patches)))
    return boot_cells(cells, release, tmp_path_factory.mktemp(f"lab-variants-{release}") / "runs")


def _delivered_and_pba_read(counters: dict[str, int]) -> None:
    assert counters["triggered"] == counters["delivered"] == CYCLES
    assert counters["pba_seen"] == CYCLES  # the guest read its pending bit in every mask window


def test_every_variant_run_completes(variant_runs: dict[str, Run], release: str) -> None:
    assert sorted(variant_runs) == sorted(CELLS)
    for name, run in variant_runs.items():
        assert run.meta.status == "complete", (name, run.meta.error)
        assert run.meta.labels["release"] == release, name  # the release's L1 ran the release's build
        assert run.meta.qemu.patches == list(qb.SERIES)
        assert unexplained_failures(run.meta.checks, run.meta.host.kernel_release) == [], name


@pytest.mark.parametrize("accel", ["tcg", "kvm"])
def test_properties_off_behave_like_stock(variant_runs: dict[str, Run], accel: str) -> None:
    run = variant_runs[f"off-{accel}"]
    assert unexplained_failures(run.meta.checks, run.meta.host.kernel_release) == []  # the stock checks hold
    probes, trace, counters = measure_counts(run)
    _delivered_and_pba_read(counters)
    per_cycle_ioctls = 1 if accel == "tcg" else 2
    assert probes["set_irqs_ioctl"] == probes["set_vector_signal"] == per_cycle_ioctls * CYCLES
    assert probes["pba_toggle"] == 2 * CYCLES
    assert trace.get("vfio_msix_fd_cache_hit", 0) == trace.get("vfio_msix_pba_always_on", 0) == 0


@pytest.mark.parametrize("accel", ["tcg", "kvm"])
def test_pba_always_on_never_toggles_and_pending_bit_still_reads(
    variant_runs: dict[str, Run], accel: str
) -> None:
    probes, trace, counters = measure_counts(variant_runs[f"pba-always-on-{accel}"])
    _delivered_and_pba_read(counters)
    assert probes["pba_toggle"] == 0
    assert trace.get("vfio_msix_pba_enable", 0) == trace.get("vfio_msix_pba_disable", 0) == 0
    assert trace["vfio_msi_interrupt"] == CYCLES  # every masked interrupt still went through QEMU
    per_cycle_ioctls = 1 if accel == "tcg" else 2
    assert probes["set_irqs_ioctl"] == per_cycle_ioctls * CYCLES  # untouched by this property


def test_msix_fd_cache_tcg_issues_no_set_irqs_per_cycle(variant_runs: dict[str, Run]) -> None:
    probes, trace, counters = measure_counts(variant_runs["msix-fd-cache-tcg"])
    _delivered_and_pba_read(counters)
    assert probes["set_irqs_ioctl"] == probes["set_vector_signal"] == 0
    assert trace["vfio_msix_fd_cache_hit"] == trace["vfio_msix_vector_do_use"] == CYCLES
    assert probes["pba_toggle"] == 2 * CYCLES  # untouched by this property


def test_msix_fd_cache_kvm_still_switches_eventfds(variant_runs: dict[str, Run]) -> None:
    """Under KVM the vector alternates between the irqfd and QEMU's eventfd: nothing to skip."""
    probes, trace, counters = measure_counts(variant_runs["msix-fd-cache-kvm"])
    _delivered_and_pba_read(counters)
    assert probes["set_irqs_ioctl"] == probes["set_vector_signal"] == 2 * CYCLES
    assert trace.get("vfio_msix_fd_cache_hit", 0) == 0


@pytest.mark.parametrize("accel", ["tcg", "kvm"])
def test_pba_disable_never_enables_the_pba(variant_runs: dict[str, Run], accel: str) -> None:
    """Same guest (never reads the PBA), stock vs x-pba-disable: the two toggles per window go."""
    per_cycle_ioctls = 1 if accel == "tcg" else 2
    for name, toggles in ((f"off-nopba-{accel}", 2 * CYCLES), (f"pba-disable-{accel}", 0)):
        probes, trace, counters = measure_counts(variant_runs[name])
        assert counters["triggered"] == counters["delivered"] == counters["qemu_took"] == CYCLES, name
        assert counters["pba_seen"] == 0, name  # the guest never read the PBA
        assert probes["pba_toggle"] == toggles, name
        assert trace.get("vfio_msix_pba_enable", 0) + trace.get("vfio_msix_pba_disable", 0) == toggles, name
        assert trace.get("vfio_msix_pba_skip", 0) == (CYCLES if toggles == 0 else 0), name
        assert trace["vfio_msi_interrupt"] == CYCLES, name  # every masked interrupt went through QEMU
        assert probes["set_irqs_ioctl"] == per_cycle_ioctls * CYCLES, name  # untouched by the property
