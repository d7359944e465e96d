"""The interleaved plan: variants alternate within each repetition, warm-ups first."""

from experiment_doubles import SPEC

from vfiobench.experiment import make_plan, parse_spec


def test_plan_interleaves_variants_within_each_repetition():
    spec = parse_spec(SPEC)
    plan = make_plan(spec)
    assert len(plan) == (1 + 2) * 3 * 1 * 1 * 2
    order = [(r.warmup, r.repetition, r.variant.name, r.kind) for r in plan]
    assert order[:6] == [
        (True, 0, "A", "probed"),
        (True, 0, "A", "probe-free"),
        (True, 0, "B", "probed"),
        (True, 0, "B", "probe-free"),
        (True, 0, "C", "probed"),
        (True, 0, "C", "probe-free"),
    ]
    assert [r.variant.name for r in plan if not r.warmup and r.kind == "probed"] == list("ABCABC")
    assert len({r.run_id for r in plan}) == len(plan)
    assert plan[2].variant.device_suffix == ",x-pba-always-on=on"
    assert plan[2].variant.qemu == "build"


def test_release_axis_keeps_releases_apart_and_in_the_run_ids():
    """Each release is its own cell (never pooled), one boot per release and round, ids name it."""
    from vfiobench.experiment.backends import LabBackend
    from vfiobench.experiment.plan import cell_label, cells

    text = SPEC.replace("[experiment]", '[experiment]\nreleases = ["bookworm", "trixie-backports"]', 1)
    spec = parse_spec(text)
    assert spec.releases == ("bookworm", "trixie-backports") and spec.release_axis
    plan = make_plan(spec)
    assert len(plan) == 2 * len(make_plan(parse_spec(SPEC)))
    assert len({r.run_id for r in plan}) == len(plan)
    assert {r.release for r in plan} == {"bookworm", "trixie-backports"}
    for r in plan:
        assert f"-{r.release}-{r.variant.name}-" in r.run_id and r.labels(spec.name)["release"] == r.release
    assert [cell_label(c) for c in cells(spec)] == [
        "bookworm · mask-every-irq · tcg",
        "trixie-backports · mask-every-irq · tcg",
    ]
    batches: dict[object, set[str]] = {}
    backend = LabBackend(spec)
    for r in plan:
        batches.setdefault(backend.batch_key(r), set()).add(r.release)
    assert all(len(releases) == 1 for releases in batches.values())
    assert len(batches) == 2 * (1 + 2)  # (warm-up + 2 rounds) per release
    # without `releases`, a lab spec runs on the default release and its run ids do not change
    plain = make_plan(parse_spec(SPEC))
    assert {r.release for r in plain} == {"bookworm"} and not parse_spec(SPEC).release_axis
    assert all("bookworm" not in r.run_id for r in plain)


def test_bad_releases_are_one_line_errors():
    import pytest

    from vfiobench.errors import ExperimentError

    for bad, message in (
        ('releases = ["bullseye"]', "release 'bullseye' is not one of bookworm, trixie, trixie-backports"),
        ("releases = []", "experiment.releases must be a non-empty list"),
        ('releases = ["trixie", "trixie"]', "duplicate releases"),
    ):
        with pytest.raises(ExperimentError, match=message):
            parse_spec(SPEC.replace("[experiment]", f"[experiment]\n{bad}", 1))
