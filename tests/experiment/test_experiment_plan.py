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
