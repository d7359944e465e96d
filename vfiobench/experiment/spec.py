"""Experiment specs: which QEMU variants, workloads and accelerators to compare, how many times.

A spec is a TOML file; the shipped ones (``pba``, ``pba-disable``) are in ``vfiobench/experiment/specs/``
and load by name (:func:`load_spec`)::

    [experiment]
    name = "pba"
    backend = "lab"          # or "host": a real machine with a real VFIO device
    repetitions = 3          # measured repetitions, interleaved A B C A B C ...; or adaptive:
    # repetitions = { min = 6, max = 30, target = 0.10 }   # add rounds per cell until every
    #                          # variant's 95% interval is within ±10% (metric = "us_per_irq")
    warmup = 1               # warm-up repetitions: recorded, labelled warmup, excluded from analysis
    probe_free = true        # pair every probed run with a probe-free run of the same cell
    cycles = 301             # default workload length
    accels = ["kvm", "tcg"]
    releases = ["bookworm", "trixie-backports"]   # lab only: L1's Debian release (kernel, QEMU,
    #                          # BCC); default bookworm. Cells never pool releases.

    [[variants]]
    name = "stock"           # the baseline the report compares against
    qemu = "system"          # "system" (Debian's binary), a path, or omit with `patches`
    [[variants]]
    name = "pba-always-on"
    patches = ["pba-always-on"]                    # built by `vfiobench qemu build`
    device_props = { "x-pba-always-on" = "on" }    # appended to -device vfio-pci,...

    [[workloads]]
    name = "mask-every-irq"
    cycles = 301             # optional per-workload override

    [host]                   # backend = "host" only
    qemu_cmdline = ["qemu-system-x86_64", "...", "-device", "vfio-pci,host=0000:01:00.0{props}"]
    workload_command = ["ssh", "guest", "run-rtos-test --cycles {cycles}"]
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, get_args

from vfiobench.errors import ExperimentError
from vfiobench.lab.workloads import WORKLOADS

Backend = Literal["lab", "host"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
KNOWN_ACCELS = ("kvm", "tcg")
SPECS_DIR = "specs"  # the shipped specs, beside this module


@dataclass(frozen=True)
class Variant:
    """One QEMU variant: a binary (stock or patched) and extra vfio-pci device properties.

    ``releases``: the lab releases it runs on (empty: all the spec's), e.g. a patched build only
    where the release's QEMU source can be built.
    """

    name: str
    qemu: str = "system"
    patches: tuple[str, ...] = ()
    device_props: tuple[tuple[str, str], ...] = ()
    extra_args: tuple[str, ...] = ()
    releases: tuple[str, ...] = ()

    def runs_on(self, release: str) -> bool:
        """Whether the variant runs on ``release`` ("" on the host backend: always)."""
        return not self.releases or not release or release in self.releases

    @property
    def device_suffix(self) -> str:
        """The ``,key=value...`` appended to ``-device vfio-pci,host=...``."""
        return "".join(f",{k}={v}" for k, v in self.device_props)


@dataclass(frozen=True)
class Workload:
    """One guest workload and its parameters."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, key: str, default: Any = None) -> Any:
        """Return one parameter's value (or ``default``)."""
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class HostConfig:
    """How the host backend launches QEMU and drives the guest."""

    qemu_cmdline: tuple[str, ...] = ()
    workload_command: tuple[str, ...] = ()
    timeout_s: float = 600.0


@dataclass(frozen=True)
class Repetitions:
    """How many measured repetitions each cell gets: a fixed number, or adaptive.

    Fixed (``repetitions = N``): ``min == max == N``, no target. Adaptive (``repetitions = { min,
    max, target }``): every cell (workload × accel) runs ``min`` rounds, then one more round at a
    time until, for every non-baseline variant and every metric in ``metrics``, the 95 % interval's
    relative half-width (:func:`vfiobench.analysis.precision.relative_half_width`) is at most
    ``target``, or ``max`` rounds are done.

    Attributes:
        min: rounds every cell runs.
        max: rounds no cell exceeds.
        target: the relative half-width that stops a cell (None: fixed ``min`` rounds).
        metrics: the A/B metrics the rule looks at (:data:`vfiobench.analysis.ab.METRICS`).
    """

    min: int
    max: int
    target: float | None = None
    metrics: tuple[str, ...] = ("us_per_irq",)

    @property
    def adaptive(self) -> bool:
        """True when cells stop by the precision rule rather than after a fixed count."""
        return self.target is not None

    def describe(self) -> str:
        """One line for the plan and the page."""
        if self.target is None:
            return f"{self.min} repetitions a cell (fixed)"
        return (
            f"{self.min} to {self.max} repetitions a cell: stop once every variant's 95% interval of "
            f"{' and '.join(self.metrics)} is within ±{self.target:.0%} (relative half-width)"
        )

    def to_dict(self) -> dict[str, Any]:
        """The rule as recorded in ``experiment.json``."""
        return {"min": self.min, "max": self.max, "target": self.target, "metrics": list(self.metrics)}


@dataclass(frozen=True)
class ExperimentSpec:
    """A parsed and validated experiment spec.

    ``releases`` are the lab releases (:mod:`vfiobench.lab.releases`) every cell runs on (``("",)``
    for the host backend: the host is what it is); ``release_axis`` is True when the spec names
    them, and then run ids carry the release.
    """

    name: str
    backend: Backend
    variants: tuple[Variant, ...]
    workloads: tuple[Workload, ...]
    accels: tuple[str, ...] = ("kvm", "tcg")
    releases: tuple[str, ...] = ("",)
    release_axis: bool = False
    repetitions: Repetitions = Repetitions(3, 3)
    warmup: int = 1
    probe_free: bool = True
    host: HostConfig = field(default_factory=HostConfig)
    source_text: str = ""
    path: str = ""

    @property
    def baseline(self) -> str:
        """The first variant is the baseline every other one is compared against."""
        return self.variants[0].name

    @property
    def digest(self) -> str:
        """A short hash of the spec text (an interrupted experiment resumes only with the same spec)."""
        return hashlib.sha256(self.source_text.encode()).hexdigest()[:16]


def _require(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ExperimentError(f"{where}: {message}")


def _name(value: Any, where: str) -> str:
    _require(
        isinstance(value, str) and bool(_NAME.match(value)),
        where,
        f"bad name {value!r} (letters, digits, _.+-)",
    )
    return str(value)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _repetitions(value: Any, where: str) -> Repetitions:
    """``repetitions = N`` or ``repetitions = { min, max, target[, metric] }``."""
    if _int(value):
        _require(value >= 1, where, "experiment.repetitions must be an integer >= 1")
        return Repetitions(value, value)
    _require(
        isinstance(value, dict),
        where,
        "experiment.repetitions must be an integer >= 1 or a table { min, max, target }",
    )
    at = "experiment.repetitions"
    unknown = set(value) - {"min", "max", "target", "metric"}
    _require(
        not unknown, where, f"{at}: unknown key(s) {', '.join(sorted(unknown))} (min, max, target, metric)"
    )
    from vfiobench.analysis.inference import MIN_RUNS

    lo, hi, target = value.get("min", MIN_RUNS), value.get("max"), value.get("target")
    _require(
        _int(lo) and lo >= MIN_RUNS,
        where,
        f"{at}.min must be an integer >= {MIN_RUNS} (no interval, so no rule, below {MIN_RUNS} runs a side)",
    )
    _require(_int(hi) and hi >= lo, where, f"{at}.max must be an integer >= min ({lo})")
    _require(
        isinstance(target, int | float) and not isinstance(target, bool) and 0 < target < 1,
        where,
        f"{at}.target must be a relative half-width between 0 and 1 (0.10: within ±10%)",
    )
    metric = value.get("metric", "us_per_irq")
    metrics = (metric,) if isinstance(metric, str) else metric
    from vfiobench.analysis.ab import METRICS

    _require(
        isinstance(metrics, list | tuple) and bool(metrics) and all(m in METRICS for m in metrics),
        where,
        f"{at}.metric must be one of {', '.join(METRICS)} or a list of them",
    )
    return Repetitions(lo, hi, float(target), tuple(metrics))


def parse_spec(text: str, where: str = "<spec>") -> ExperimentSpec:
    """Parse and validate a spec's TOML text.

    Raises:
        ExperimentError: naming the file and the offending key.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ExperimentError(f"{where}: not valid TOML ({e})") from None
    exp = data.get("experiment", {})
    _require(isinstance(exp, dict), where, "[experiment] must be a table")
    name = _name(exp.get("name", Path(where).stem), f"{where}: experiment.name")
    backend = exp.get("backend", "lab")
    backends = get_args(Backend)
    _require(
        backend in backends, where, f"experiment.backend {backend!r} is not one of {', '.join(backends)}"
    )
    reps, warmup = _repetitions(exp.get("repetitions", 3), where), exp.get("warmup", 1)
    _require(isinstance(warmup, int) and warmup >= 0, where, "experiment.warmup must be an integer >= 0")
    accels = tuple(exp.get("accels", ["kvm", "tcg"]))
    for a in accels:
        _require(a in KNOWN_ACCELS, where, f"accel {a!r} is not one of {', '.join(KNOWN_ACCELS)}")
    releases = _releases(exp, backend, where)
    defaults = {k: exp[k] for k in ("cycles", "vectors", "burst", "duration_s", "warmup_cycles") if k in exp}

    variants = []
    for i, v in enumerate(data.get("variants", [])):
        at = f"{where}: variants[{i}]"
        _require(isinstance(v, dict), at, "must be a table")
        unknown = set(v) - {"name", "qemu", "patches", "device_props", "extra_args", "releases"}
        _require(not unknown, at, f"unknown key(s) {', '.join(sorted(unknown))}")
        props = v.get("device_props", {})
        _require(isinstance(props, dict), at, "device_props must be a table of strings")
        variants.append(
            Variant(
                name=_name(v.get("name"), f"{at}.name"),
                qemu=str(v.get("qemu", "build" if v.get("patches") else "system")),
                patches=tuple(v.get("patches", ())),
                device_props=tuple((str(k), str(val)) for k, val in props.items()),
                extra_args=tuple(str(a) for a in v.get("extra_args", ())),
                releases=tuple(v.get("releases", ())),
            )
        )
        for r in variants[-1].releases:
            _require(r in releases, at, f"release {r!r} is not one of the experiment's {list(releases)}")
    _require(bool(variants), where, "no [[variants]]")
    _require(
        not reps.adaptive or len(variants) >= 2,
        where,
        "adaptive experiment.repetitions need a variant besides the baseline (the rule is on comparisons)",
    )
    names = [v.name for v in variants]
    _require(len(set(names)) == len(names), where, f"duplicate variant names in {names}")

    workloads = []
    for i, w in enumerate(data.get("workloads", [])):
        at = f"{where}: workloads[{i}]"
        _require(isinstance(w, dict), at, "must be a table")
        wname = _name(w.get("name"), f"{at}.name")
        _require(
            backend != "lab" or wname in WORKLOADS,
            at,
            f"lab workload {wname!r} is not one of {', '.join(WORKLOADS)}",
        )
        params = defaults | {k: val for k, val in w.items() if k != "name"}
        workloads.append(Workload(wname, tuple(sorted(params.items()))))
    _require(bool(workloads), where, "no [[workloads]]")

    host_data = data.get("host", {})
    host = HostConfig(
        qemu_cmdline=tuple(host_data.get("qemu_cmdline", ())),
        workload_command=tuple(host_data.get("workload_command", ())),
        timeout_s=float(host_data.get("timeout_s", 600.0)),
    )
    if backend == "host":
        _require(bool(host.qemu_cmdline), where, "backend 'host' needs [host] qemu_cmdline")
        _require(bool(host.workload_command), where, "backend 'host' needs [host] workload_command")
    return ExperimentSpec(
        name=name,
        backend=backend,
        variants=tuple(variants),
        workloads=tuple(workloads),
        accels=accels,
        releases=releases,
        release_axis="releases" in exp,
        repetitions=reps,
        warmup=warmup,
        probe_free=bool(exp.get("probe_free", True)),
        host=host,
        source_text=text,
        path=where,
    )


def _releases(exp: dict[str, Any], backend: str, where: str) -> tuple[str, ...]:
    """``experiment.releases``: lab releases (default the lab's default); host runs have none ("")."""
    from vfiobench.lab.releases import DEFAULT_RELEASE, RELEASES

    if backend != "lab":
        _require("releases" not in exp, where, "experiment.releases is for backend 'lab' only")
        return ("",)
    releases = exp.get("releases", [DEFAULT_RELEASE])
    _require(
        isinstance(releases, list) and bool(releases) and all(isinstance(r, str) for r in releases),
        where,
        "experiment.releases must be a non-empty list of release names",
    )
    for r in releases:
        _require(r in RELEASES, where, f"release {r!r} is not one of {', '.join(RELEASES)}")
    _require(len(set(releases)) == len(releases), where, f"duplicate releases in {releases}")
    return tuple(releases)


def _shipped() -> Traversable:
    return resources.files("vfiobench.experiment").joinpath(SPECS_DIR)


def builtin_specs() -> list[str]:
    """Names of the specs shipped in ``vfiobench/experiment/specs/``."""
    return sorted(f.name.removesuffix(".toml") for f in _shipped().iterdir() if f.name.endswith(".toml"))


def load_spec(path_or_name: str | Path) -> ExperimentSpec:
    """Load a spec from a file path, or by the name of a shipped spec (``pba``)."""
    path = Path(path_or_name)
    if path.is_file():
        return parse_spec(path.read_text(encoding="utf-8"), str(path))
    name = str(path_or_name)
    if name in builtin_specs():
        res = _shipped().joinpath(f"{name}.toml")
        return parse_spec(res.read_text(encoding="utf-8"), f"vfiobench/experiment/{SPECS_DIR}/{name}.toml")
    raise ExperimentError(
        f"{path_or_name}: no such spec file", f"give a TOML path or one of: {', '.join(builtin_specs())}"
    )
