"""Spec validation and the shipped specs (loaded by name from the package)."""

import pytest
from experiment_doubles import SPEC

from vfiobench.errors import ExperimentError
from vfiobench.experiment import load_spec, make_plan, parse_spec
from vfiobench.experiment.spec import builtin_specs


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (('[[variants]]\nname = "A"', '[[variants]]\nname = "a b"'), "bad name 'a b'"),
        (("repetitions = 2", "repetitions = 0"), "repetitions must be an integer >= 1"),
        (('accels = ["tcg"]', 'accels = ["hvf"]'), "accel 'hvf'"),
        (('name = "mask-every-irq"', 'name = "fio"'), "lab workload 'fio'"),
        (('[[variants]]\nname = "C"', '[[variants]]\nname = "A"'), "duplicate variant names"),
        (("[experiment]", "[experiment\n"), "not valid TOML"),
        (("repetitions = 2", "repetitions = true"), "repetitions must be an integer >= 1 or a table"),
        (
            ("repetitions = 2", "repetitions = { min = 5, max = 9, target = 0.1 }"),
            r"min must be an integer >= 6",
        ),
        (
            ("repetitions = 2", "repetitions = { min = 8, max = 7, target = 0.1 }"),
            r"max must be an integer >= min \(8\)",
        ),
        (("repetitions = 2", "repetitions = { min = 6, max = 9 }"), "target must be a relative half-width"),
        (("repetitions = 2", "repetitions = { min = 6, max = 9, target = 10 }"), "target must be"),
        (
            ("repetitions = 2", "repetitions = { min = 6, max = 9, target = 0.1, p = 0.05 }"),
            r"unknown key\(s\) p",
        ),
        (
            ("repetitions = 2", 'repetitions = { max = 9, target = 0.1, metric = "p99" }'),
            "metric must be one of",
        ),
        (('name = "C"', 'name = "C"\nqemu_path = "x"'), "unknown key"),
    ],
)
def test_bad_specs_name_the_problem(patch, message):
    with pytest.raises(ExperimentError, match=message) as info:
        parse_spec(SPEC.replace(*patch), "my.toml")
    assert str(info.value).startswith("my.toml")


def test_repetitions_fixed_or_adaptive():
    fixed = parse_spec(SPEC).repetitions
    assert (fixed.min, fixed.max, fixed.target, fixed.adaptive) == (2, 2, None, False)
    text = SPEC.replace(
        "repetitions = 2", 'repetitions = { max = 30, target = 0.1, metric = ["us_per_irq", "latency_ns"] }'
    )
    rule = parse_spec(text).repetitions
    assert (rule.min, rule.max, rule.target, rule.metrics) == (6, 30, 0.1, ("us_per_irq", "latency_ns"))
    assert rule.describe() == (
        "6 to 30 repetitions a cell: stop once every variant's 95% interval of us_per_irq and latency_ns "
        "is within ±10% (relative half-width)"
    )
    lone = text.replace('[[variants]]\nname = "B"', "").replace('[[variants]]\nname = "C"', "")
    lone = lone.replace('patches = ["pba-always-on"]\ndevice_props = { "x-pba-always-on" = "on" }', "")
    with pytest.raises(ExperimentError, match="need a variant besides the baseline"):
        parse_spec(lone)


def test_shipped_pba_spec():
    spec = load_spec("pba")
    assert spec.baseline == "stock"
    names = [v.name for v in spec.variants]
    assert names == ["stock", "pba-always-on", "fd-cache", "pba-always-on+fd-cache", "no-kvm-msix"]
    assert {w.name for w in spec.workloads} == {"mask-every-irq", "no-mask"}
    assert spec.accels == ("kvm", "tcg")
    with pytest.raises(ExperimentError, match="no such spec file"):
        load_spec("nonexistent")


def test_shipped_pba_disable_spec_runs_its_guest_on_every_variant():
    spec = load_spec("pba-disable")
    assert spec.baseline == "stock"
    assert [(v.name, v.patches, v.device_props) for v in spec.variants] == [
        ("stock", (), ()),
        ("pba-disable", ("pba-disable",), (("x-pba-disable", "on"),)),
        ("pba-always-on", ("pba-always-on",), (("x-pba-always-on", "on"),)),
    ]
    assert [w.name for w in spec.workloads] == ["mask-no-pba"]  # x-pba-disable's guest reads no PBA
    # interleaved A B C A B C, each cell probed and probe-free, warm-up first
    plan = make_plan(spec)
    assert len(plan) == (10 + 1) * 3 * 2 * 2  # 10 repetitions and a warm-up, as the sample was recorded
    assert [r.variant.name for r in plan[:12:4]] == ["stock", "pba-disable", "pba-always-on"]
    assert {r.workload.param("cycles") for r in plan} == {101}


def test_shipped_stack_spec_runs_every_variant_on_every_release():
    from vfiobench.experiment.plan import cells
    from vfiobench.lab.releases import RELEASES

    spec = load_spec("stack")
    assert spec.releases == tuple(RELEASES) and spec.release_axis
    names = ["stock", "pba-always-on", "pba-always-on+fd-cache", "debian"]
    assert [v.name for v in spec.variants] == names
    built = [v for v in spec.variants if v.qemu == "build"]  # each release's own source, same recipe
    assert [v.name for v in built] == names[:3]
    # every release, trixie-backports from sid's 10.2.2 source (its own 11.1 is not served)
    assert all(v.releases == () for v in built)
    assert len(cells(spec)) == 3 * 2 * 2
    plan = make_plan(spec)
    per_release = {r: {p.variant.name for p in plan if p.release == r} for r in RELEASES}
    assert per_release == {r: set(names) for r in RELEASES}
    assert len(plan) == (10 + 1) * 4 * 2 * 4 * 3  # rounds x cells x kinds x variants x releases


def test_shipped_auto_spec_compares_the_series_with_every_fix_after_warmup():
    spec = load_spec("auto")
    assert spec.releases == ("bookworm", "trixie", "trixie-backports") and spec.baseline == "stock"
    variants = {v.name: v for v in spec.variants}
    assert list(variants) == [
        "stock",
        "auto",
        "pba-always-on",
        "pba-always-on+fd-cache",
        "no-kvm-msix+fd-cache",
    ]
    assert variants["auto"].patches == ("msix-mask-auto",)
    assert dict(variants["auto"].device_props) == {"x-msix-mask-auto": "on"}  # the checks read it
    assert [w.name for w in spec.workloads] == ["mask-every-irq", "no-mask", "mask-no-pba", "burst"]
    # past the series' default threshold (16 masks) before measuring, every variant alike
    assert {w.param("warmup_cycles") for w in spec.workloads} == {20}


def test_shipped_specs_are_package_resources():
    assert builtin_specs() == ["auto", "pba", "pba-disable", "stack"]
    assert load_spec("pba").path == "vfiobench/experiment/specs/pba.toml"
