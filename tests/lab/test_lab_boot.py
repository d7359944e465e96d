"""The real lab: L1 under TCG, vfio-pci in L1, L2 QEMU over qtest, probes in L1 (one boot per release).

Counts are exact for a prime number of cycles (31): they come from the real kernel and QEMU code
paths, cross-checked three ways (probes, QEMU's trace log, the workload's own counters). Every test
runs once per lab release (bookworm: Linux 6.1 / QEMU 7.2; trixie: 6.12 / 10.0;
trixie-backports: 7.3 / 11.1), each release's stock Debian QEMU as L2: the per-cycle counts are the
same on all three.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kernel_skips import unexplained_failures

from vfiobench.lab.releases import RELEASES
from vfiobench.store import Run, load_run

pytestmark = [pytest.mark.lab, pytest.mark.root]

#: A prime number of cycles, so per-cycle ratios cannot come out right by accident.
CYCLES = 31


@pytest.fixture(scope="session", params=list(RELEASES))
def release(request: pytest.FixtureRequest) -> str:
    """The lab release under test."""
    return str(request.param)


@pytest.fixture(scope="session")
def lab_runs(tmp_path_factory: pytest.TempPathFactory, release: str) -> dict[str, Run]:
    """Cell id -> run, from one boot: kvm/tcg x mask-every-irq/no-mask probed, plus two probe-free cells."""
    from vfiobench.lab.image import Recipe, build_image
    from vfiobench.lab.runner import plan_cells, run_lab, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"lab cannot run here: {reason}")
    cells = plan_cells(["kvm", "tcg"], ["mask-every-irq", "no-mask"], cycles=CYCLES, probes=True)
    cells += plan_cells(["kvm"], ["mask-every-irq"], cycles=CYCLES, probes=False)
    cells += plan_cells(["tcg"], ["burst"], cycles=CYCLES // 3, vectors=[0, 1], burst=3, probes=False)
    out: Path = tmp_path_factory.mktemp(f"lab-{release}") / "runs"
    lines: list[str] = []
    lab = run_lab(cells, out, image=build_image(Recipe.default(release)), show=lines.append)
    print("\n".join(lines))
    return {p.name: load_run(p) for p in lab.runs}


def measure_counts(run: Run) -> tuple[dict[str, int], dict[str, int]]:
    """(probe counts, trace counts) in the measure phase, as recorded in run.json."""
    probes = json.loads(run.meta.labels.get("probe_counts_measure", "{}"))
    trace = json.loads(run.meta.labels["trace_counts_measure"])
    return probes, trace


def test_every_cell_is_complete_and_every_check_passes(lab_runs: dict[str, Run]) -> None:
    assert sorted(lab_runs) == [
        "kvm-mask-every-irq",
        "kvm-mask-every-irq-probe-free",
        "kvm-no-mask",
        "tcg-burst-probe-free",
        "tcg-mask-every-irq",
        "tcg-no-mask",
    ]
    for name, run in lab_runs.items():
        assert run.meta.status == "complete", (name, run.meta.error)
        assert run.meta.source == "lab"
        assert run.meta.kind == ("probe-free" if name.endswith("probe-free") else "probed")
        bad = unexplained_failures(run.meta.checks, run.meta.host.kernel_release)
        assert bad == [], name
        assert len(run.meta.checks) >= 5


def test_tcg_mask_one_set_irqs_and_one_set_vector_signal_per_unmask(lab_runs: dict[str, Run]) -> None:
    run = lab_runs["tcg-mask-every-irq"]
    probes, trace = measure_counts(run)
    assert trace["vfio_msix_vector_do_use"] == CYCLES  # one unmask per cycle
    assert probes["set_irqs_ioctl"] == CYCLES
    assert probes["set_vector_signal"] == CYCLES


def test_kvm_mask_two_set_irqs_and_two_set_vector_signal_per_cycle(lab_runs: dict[str, Run]) -> None:
    probes, trace = measure_counts(lab_runs["kvm-mask-every-irq"])
    assert probes["set_irqs_ioctl"] == 2 * CYCLES
    assert probes["set_vector_signal"] == 2 * CYCLES
    assert trace["vfio_msix_vector_release"] == trace["vfio_msix_vector_do_use"] == CYCLES


@pytest.mark.parametrize("accel", ["kvm", "tcg"])
def test_pba_toggles_twice_per_masked_cycle_and_never_without_masking(
    lab_runs: dict[str, Run], accel: str
) -> None:
    masked, _ = measure_counts(lab_runs[f"{accel}-mask-every-irq"])
    unmasked, trace = measure_counts(lab_runs[f"{accel}-no-mask"])
    assert masked["pba_toggle"] == 2 * CYCLES
    assert unmasked["pba_toggle"] == 0
    assert unmasked["set_irqs_ioctl"] == unmasked["set_vector_signal"] == 0
    assert "vfio_msix_pba_enable" not in trace


@pytest.mark.parametrize("cell", ["kvm-mask-every-irq", "tcg-mask-every-irq", "kvm-no-mask", "tcg-no-mask"])
def test_probe_counts_equal_the_qemu_trace_log(lab_runs: dict[str, Run], cell: str) -> None:
    probes, trace = measure_counts(lab_runs[cell])
    kvm = cell.startswith("kvm")
    ioctls = trace.get("vfio_msix_vector_do_use", 0) + (
        trace.get("vfio_msix_vector_release", 0) if kvm else 0
    )
    assert probes["set_irqs_ioctl"] == ioctls
    assert probes["set_vector_signal"] == ioctls
    assert probes["pba_toggle"] == trace.get("vfio_msix_pba_enable", 0) + trace.get(
        "vfio_msix_pba_disable", 0
    )
    # QEMU handles each interrupt itself except with KVM and no masking (irqfd straight into KVM)
    assert trace.get("vfio_msi_interrupt", 0) == (0 if cell == "kvm-no-mask" else CYCLES)
    # KVM: one MSI route commit (KVM_SET_GSI_ROUTING) per unmask, as QEMU's own trace says; no
    # irqfd churn (the bypass switch is SET_IRQS); nothing KVM under TCG
    routes = CYCLES if cell == "kvm-mask-every-irq" else 0
    assert probes["kvm_ioctls.gsi_routing"] == trace.get("kvm_irqchip_commit_routes", 0) == routes
    assert probes["kvm_ioctls.irqfd"] == probes["kvm_ioctls.signal_msi"] == 0


@pytest.mark.parametrize(
    "cell",
    sorted(
        [
            "kvm-mask-every-irq",
            "kvm-no-mask",
            "tcg-mask-every-irq",
            "tcg-no-mask",
            "kvm-mask-every-irq-probe-free",
        ]
    ),
)
def test_workload_delivered_every_trigger(lab_runs: dict[str, Run], cell: str) -> None:
    run = lab_runs[cell]
    counters = run.meta.workload.params["counters"]
    assert counters["triggered"] == counters["delivered"] == CYCLES
    w = run.table("workload")
    assert len(w) == CYCLES and bool(w["delivered"].all())
    assert (w["latency_ns"] > 0).all()
    assert bool(w["pba_seen"].all()) == ("mask" in cell and "no-mask" not in cell)
    assert run.meta.labels["irq_delta_measure"] == CYCLES  # L1 saw one vfio-msix interrupt per trigger


def test_burst_over_two_vectors(lab_runs: dict[str, Run]) -> None:
    run = lab_runs["tcg-burst-probe-free"]
    c = run.meta.workload.params["counters"]
    windows = (CYCLES // 3) * 2
    assert (c["masks"], c["unmasks"], c["delivered"], c["triggered"]) == (
        windows,
        windows,
        windows,
        3 * windows,
    )
    w = run.table("workload")
    assert sorted(set(w["vector"])) == [0, 1]


def test_runs_carry_logs_and_qemu_metadata(lab_runs: dict[str, Run]) -> None:
    run = lab_runs["kvm-mask-every-irq"]
    for name in ("console.log", "job.log", "qemu-trace.log", "l2-stderr.log", "cell.json"):
        assert run.attachment(name).stat().st_size > 0, name
    assert "vfiobench-lab: job done rc=0" in run.attachment("console.log").read_text()
    assert run.meta.qemu.version.startswith("QEMU emulator version")
    assert len(run.meta.qemu.build_id) == 40
    assert "vfio-pci,host=" in " ".join(run.meta.qemu.cmdline)
    assert run.meta.labels["accel"] == "kvm" and run.meta.labels["workload"] == "mask-every-irq"
    for probe in ("set_irqs_ioctl", "set_vector_signal", "pba_toggle"):
        assert run.meta.probes[probe].lost == 0
        assert run.has_table(probe)
    trace = run.table("qemu_trace")
    assert set(trace["phase"]) >= {"setup", "measure"}


def test_second_build_reuses_the_cached_image(
    lab_runs: dict[str, Run], release: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vfiobench.lab import image

    def no_rebuild(self: object) -> None:
        raise AssertionError("the cached image was rebuilt")

    monkeypatch.setattr(image._Builder, "debootstrap", no_rebuild)
    img = image.build_image(image.Recipe.default(release))
    assert img.path.name == image.Recipe.default(release).digest()
    labels = lab_runs["kvm-no-mask"].meta.labels
    assert labels["lab_image"] == img.path.name and labels["release"] == release
    assert f"qemu-system-x86 {img.info['packages']['qemu-system-x86']}" in labels["lab_packages"]
    assert img.info["kernel_release"] == lab_runs["kvm-no-mask"].meta.host.kernel_release


def test_each_run_carries_its_own_recording_times(lab_runs: dict[str, Run]) -> None:
    """started/ended are when L1 ran the cell (L1's clock), not when the host exported the runs."""
    import datetime as dt
    import itertools

    def t(s: str | None) -> dt.datetime:
        assert s is not None
        return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")

    spans = sorted(
        ((t(r.meta.started_utc), t(r.meta.ended_utc), r) for r in lab_runs.values()), key=lambda x: x[0]
    )
    for (start, end, run), (next_start, _, _) in itertools.pairwise(spans):
        assert end <= next_start  # one cell after the other, in the order they ran
        wall = float(run.meta.labels["cell_wall_s"])
        assert abs((end - start).total_seconds() - wall) < 1.0, run.run_id
    # not all stamped at export (which takes well under a second): the first start is at least the
    # earlier cells' own wall time before the last one
    earlier = sum(float(run.meta.labels["cell_wall_s"]) for _, _, run in spans[:-1])
    assert (spans[-1][0] - spans[0][0]).total_seconds() >= earlier - 1.0 > 3.0


def test_skipped_probe_runs_counted_where_the_kernel_counts_them(
    lab_runs: dict[str, Run], release: str
) -> None:
    """missed: NA ("not measured") on Linux 6.1, a count from 6.7 on; host IRQs via raw tracepoints."""
    from vfiobench.store import kernel_counts_misses

    run = lab_runs["kvm-mask-every-irq"]
    counted = kernel_counts_misses(run.meta.host.kernel_release)
    assert counted == (release != "bookworm")
    for name, stats in run.meta.probes.items():
        assert (stats.missed is None) == (not counted), name
        if counted:
            assert isinstance(stats.missed, int) and stats.missed >= 0, name
    assert "host_irq=raw_tracepoint:irq:irq_handler_entry" in run.meta.probes["irq_path"].target
