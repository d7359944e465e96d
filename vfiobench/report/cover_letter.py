"""The cover letter of the auto-detection series, with its evidence section made from runs.

``vfiobench report RUNS --cover-letter FILE`` (``make series`` for the checked-in one) writes a
``git format-patch``-style cover letter (``[PATCH 0/N]``) for the series in
``vfiobench/qemu/series/<major>/``: the rationale (a fixed text, :data:`INTRO`), then the
**evidence**, made here from the runs, in plain text no wider than 72 columns:

- per cell (workload under an accelerator, on one stack), per variant: SET_IRQS ioctls, PBA toggles
  and KVM route commits per interrupt (mean over probed runs; the lab's checks make them exact),
  the µs per interrupt spent in the probed operations on the interrupt's path, and the interrupt
  latency p50 and p99 of probe-free runs, each a level over runs with its 95 % interval (the
  geometric mean of one value per run, :func:`~vfiobench.analysis.inference.run_level`; none below
  6 runs);
- the stack (QEMU version and source, L1 kernel, accelerators) read from the runs, and, when the
  runs' QEMU is not the version the series is against (the series in ``series/10.2/`` is against
  the newest source the project builds, the runs may come from trixie's 10.0), which port of the
  series they were made with (:func:`port_line`);
- the lab's caveats in one paragraph, and the exact commands that reproduce the numbers;
- the shortlog and diffstat of the series files.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from vfiobench.analysis.compare import Comparison, RunGroup, release_ranks
from vfiobench.analysis.inference import RunLevel, run_level
from vfiobench.errors import ReportError
from vfiobench.store import Run

#: Widest line of the letter (mailing-list convention).
WIDTH = 72

SUBJECT = "vfio/pci: detect guests masking MSI-X vectors on every interrupt"

INTRO = """\
Some guests (many RTOSes, old drivers) mask an MSI-X vector around every
interrupt.  On a vfio-pci device each mask and unmask then costs a
VFIO_DEVICE_SET_IRQS ioctl, in which the host frees and requests the
vector's IRQ again; with a KVM irqfd route the unmask also commits the
MSI route (KVM_SET_GSI_ROUTING); and each interrupt that arrives masked
toggles PBA emulation on and off, two memory transactions that rebuild
the guest's memory map.  The 2020 thread "vfio: avoid SET_ACTION_TRIGGER
ioctls" measured 1.5-2 ms per interrupt, found the PBA toggle dominated,
and proposed two ways out: x-pba-* properties, and detection ("If the
guest tries to switch PBA on/off too many times, just permanently enable
it.  The same goes for KVM bypass.").  This series does the second: no
property to set per VM, and nothing changes for guests that do not mask.

Patch 1 remembers the eventfd each MSI-X vector signals (no functional
change).  Patch 2 counts each vector's masks; past x-msix-mask-threshold
(16) within x-msix-mask-window-ms (1000 ms) it keeps PBA emulation
enabled for the device and the vector on QEMU's eventfd, so a mask or an
unmask issues neither SET_IRQS nor a route commit, and QEMU injects the
vector's MSIs.  x-msix-mask-auto=off restores today's behaviour.

Open questions: should the switch return to the KVM bypass once a guest
stops masking (it does not: the state lasts until MSI-X is disabled)?
Does a default-on x- property want a machine-type compat entry, although
it changes no guest-visible state?  Is a fixed window right?  A guest
masking slower than 16 times a second is never detected; in the lab a
guest whose cycles took 24-33 ms, stretched by host stalls, sometimes
switched late or not at all.  A count that decays, or a window scaled to
the vector's interrupt rate, would not miss it."""

CAVEATS = """\
The numbers come from vfiobench's nested lab, not from hardware: L1 is a
QEMU TCG guest (this host has no nested virtualization), L2 is the QEMU
under test with an ivshmem-doorbell device bound to vfio-pci in L1, and
the guest is qtest driving the device's MSI-X table.  Absolute times are
therefore several times what hardware shows; ratios and counts are what
carry over.  Counts are exact: every run's probe counts are checked
against QEMU's own -trace log, the workload's counters and L1's
/proc/interrupts.  Times of operations come from probed runs (uprobes,
kprobes), latencies from probe-free runs; interrupts that overlapped an
L1 stall are kept (the report shows both)."""


def _fmt(x: float) -> str:
    """3 significant digits, no exponent: 4120 -> 4120, 12.34 -> 12.3, 0.00123 -> 0.00123."""
    if not np.isfinite(x):
        return "-"
    if x == 0:
        return "0"
    digits = max(0, 2 - int(np.floor(np.log10(abs(x)))))
    return f"{x:.{digits}f}"


def fmt_level(level: RunLevel | None) -> str:
    """``4120 [3900, 4350]``; a level without interval reads ``4120 (n<6)``; none reads ``-``."""
    if level is None:
        return "-"
    if level.ci_low is None or level.ci_high is None:
        return f"{_fmt(level.center)} (n<6)"
    return f"{_fmt(level.center)} [{_fmt(level.ci_low)}, {_fmt(level.ci_high)}]"


def _level(values: Sequence[float]) -> RunLevel | None:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return run_level(v) if v.size else None


def _latency_levels(runs: Sequence[Run]) -> tuple[RunLevel | None, RunLevel | None]:
    """p50 and p99 of the delivered interrupts' latency (ms), one value per run, as levels."""
    p50, p99 = [], []
    for run in runs:
        if not run.has_table("workload"):
            continue
        w = run.table("workload")
        lat = w.loc[w["delivered"].astype(bool), "latency_ns"].to_numpy(dtype=np.float64) / 1e6
        if lat.size:
            p50.append(float(np.quantile(lat, 0.5)))
            p99.append(float(np.quantile(lat, 0.99)))
    return _level(p50), _level(p99)


def evidence_tables(cmp: Comparison) -> list[str]:
    """One block of text per group (cell): counts, µs and latencies per variant."""
    pi = cmp.per_interrupt()
    blocks = []
    name_w = max([len(v) for v in cmp.runs.variants] + [7])

    # the newest release first (the tree the series is written against), KVM before TCG
    ranks = release_ranks(cmp.runs)

    def place(g: RunGroup) -> tuple[int, bool]:
        return -ranks.get(str(g.values.get("release")), -1), g.values.get("accel") == "tcg"

    for group in sorted(cmp.groups, key=place):
        g = pi[pi["group"] == group.label]
        probed = g[g["kind"] == "probed"]
        free = [r for r in group.runs if r.meta.kind == "probe-free"]
        seen = list(dict.fromkeys(r.variant for r in group.runs))
        variants = [v for v in [cmp.baseline] if v in seen] + [v for v in seen if v != cmp.baseline]
        kinds = {r.meta.kind for r in group.runs}
        n = min(sum(1 for r in group.runs if r.variant == v and r.meta.kind == "probed") for v in variants)
        where = ", ".join(str(group.values[k]) for k in ("workload", "accel") if group.values.get(k))
        release = group.values.get("release")
        head = f"{where or group.label}{f' ({release})' if release else ''}: {n} runs a variant and kind"
        lines = [head + ("" if kinds == {"probed", "probe-free"} else f" ({', '.join(sorted(kinds))})"), ""]
        counts = f"{'':<{name_w}}  SET_IRQS  toggles  routes  us/irq on the path"
        lines.append(counts)
        for v in variants:
            rows = probed[probed["variant"] == v]

            def mean(col: str, rows: pd.DataFrame = rows) -> str:
                return _fmt(float(rows[col].mean())) if col in rows and len(rows) else "-"

            path = _level(rows["path_us_per_irq"].tolist()) if "path_us_per_irq" in rows else None
            lines.append(
                f"{v:<{name_w}}  {mean('set_irqs_per_irq'):>8}  {mean('pba_toggles_per_irq'):>7}"
                f"  {mean('gsi_routing_per_irq'):>6}  {fmt_level(path)}"
            )
        lines += ["", f"{'':<{name_w}}  latency p50 ms          latency p99 ms"]
        for v in variants:
            p50, p99 = _latency_levels([r for r in free if r.variant == v])
            lines.append(f"{v:<{name_w}}  {fmt_level(p50):<22}  {fmt_level(p99)}")
        blocks.append("\n".join(lines))
    return blocks


def _qemu_version(run: Run) -> str:
    return run.meta.qemu.version.split("(")[0].replace("QEMU emulator version", "").strip()


def _source_suite(run: Run) -> str | None:
    """The suite whose QEMU source the run's build came from (its ``qemu_source`` label), if known.

    The label reads ``1:10.2.2+ds-1 (sid; not served by the mirror: ...)`` or
    ``1:7.2+dfsg-7+deb12u18 (bookworm)``.
    """
    m = re.search(r"\(([\w.-]+)[;)]", str(run.meta.labels.get("qemu_source") or ""))
    return m.group(1) if m else None


def stack_line(cmp: Comparison) -> str:
    """QEMU version(s) and L1 kernel(s) per release, and the accelerators of the runs, as one paragraph."""
    by_release: dict[str, list[Run]] = {}
    for r in cmp.runs:
        by_release.setdefault(str(r.meta.labels.get("release") or ""), []).append(r)
    stacks = []
    for release, runs in sorted(by_release.items()):
        qemu = sorted({_qemu_version(r) for r in runs} - {""})
        kernels = sorted({r.meta.host.kernel_release for r in runs if r.meta.host.kernel_release})
        suites = sorted({_source_suite(r) or release for r in runs} - {""})
        source = f" built from Debian {' and '.join(suites)}'s source" if suites else ""
        if suites and suites != [release]:
            source += f" in a {release} build root"
        stacks.append(
            f"{release + ': ' if release else ''}QEMU {', '.join(qemu) or '?'}{source}, "
            f"L1 Linux {', '.join(kernels) or '?'}"
        )
    accels = sorted({str(r.meta.labels.get("accel")) for r in cmp.runs if r.meta.labels.get("accel")})
    text = (
        f"Stack: {'; '.join(stacks)}; the same recipe for every variant; "
        f"L2 accelerator {' and '.join(accels) or '?'}."
    )
    return textwrap.fill(text, WIDTH)


def port_line(cmp: Comparison, series: str) -> str | None:
    """Which port of the series the runs used, when their QEMU is not the series' version.

    Args:
        cmp: The runs.
        series: The series directory the letter is about (``10.2``), "" for none.

    Returns:
        A paragraph, or None when every run's QEMU takes ``series`` itself (or nothing is known).
    """
    from vfiobench.qemu.patchset import series_dir, version_key

    if not series:
        return None
    # each series directory the runs took, with their QEMU versions and releases (series/7/ served
    # bookworm's 7.2)
    took: dict[str, tuple[set[str], set[str]]] = {}
    for r in cmp.runs:
        m = re.search(r"QEMU emulator version (\d+\.\d+)", r.meta.qemu.version)
        if m is None or (d := series_dir(m.group(1))) is None:
            continue
        versions, releases = took.setdefault(d, (set(), set()))
        versions.add(m.group(1))
        releases.add(str(r.meta.labels.get("release") or ""))
    ports = {d: v for d, v in took.items() if d != series}
    if not ports:
        return None
    dotted = "{}.{}".format(*version_key(series))
    used = " and ".join(
        f"QEMU {', '.join(sorted(ports[p][0], key=version_key))} (vfiobench/qemu/series/{p}/)"
        for p in sorted(ports, key=version_key)
    )
    which = "ports" if len(ports) > 1 else "port"
    trees = "those trees" if len(ports) > 1 else "that tree"
    head = f"The series applies to QEMU {dotted}, the newest Debian source vfiobench builds"

    def named(releases: set[str]) -> str:
        return " and ".join(sorted(releases - {""})) or "other"

    if series in took:
        own = named(took[series][1])
        ported = named(set().union(*(r for _, r in ports.values())))
        text = (
            f"{head}, and the {own} runs used it; the {ported} runs used its {which} to {used}, "
            f"the same change on {trees}."
        )
    else:
        text = f"{head}; these runs used its {which} to {used}, the same change on {trees}."
    return textwrap.fill(text, WIDTH)


def evidence(cmp: Comparison, commands: Sequence[str], series: str = "") -> str:
    """The evidence section: tables, stack, caveats and commands (each line <= :data:`WIDTH`).

    ``series`` is the series directory the letter is about (:func:`port_line`).
    """
    parts = [
        "Evidence\n--------",
        textwrap.fill(
            "Per interrupt, per variant (6 or more runs each, 101 interrupts a run, "
            "variants interleaved run by run): calls per interrupt are means over "
            "probed runs; times are geometric means over runs with 95% t-intervals "
            "(one value per run).",
            WIDTH,
        ),
        *evidence_tables(cmp),
        stack_line(cmp),
        *([port] if (port := port_line(cmp, series)) else []),
        CAVEATS,
        "To reproduce:\n\n" + "\n".join(f"  {c}" for c in commands),
    ]
    text = "\n\n".join(parts) + "\n"
    too_wide = [line for line in text.splitlines() if len(line) > WIDTH]
    if too_wide:
        raise ReportError(
            f"a cover letter line is wider than {WIDTH} columns: {too_wide[0]!r}",
            "shorten the variant names or the spec path",
        )
    return text


_SUBJECT_RE = re.compile(r"^Subject: \[PATCH[^\]]*\] (.+(?:\n .+)*)$", re.MULTILINE)


def shortlog_and_diffstat(files: Sequence[tuple[str, bytes]], author: str = "vfiobench") -> str:
    """``git format-patch --cover-letter``'s shortlog and summed diffstat of the series files."""
    subjects: list[str] = []
    stat: dict[str, list[int]] = {}
    for _, raw in files:
        text = raw.decode("utf-8", "replace")
        m = _SUBJECT_RE.search(text)
        subjects.append(" ".join(m.group(1).split()) if m else "?")
        current = None
        for line in text.split("\ndiff --git ", 1)[-1].splitlines():
            if line.startswith("+++ b/"):
                current = line[6:]
                stat.setdefault(current, [0, 0])
            elif current and line.startswith("+") and not line.startswith("+++"):
                stat[current][0] += 1
            elif current and line.startswith("-") and not line.startswith("---"):
                stat[current][1] += 1
    lines = [f"{author} ({len(subjects)}):"] + [f"  {s}" for s in subjects] + [""]
    width = max((len(p) for p in stat), default=0)
    room = WIDTH - width - 8  # " path | NNN " before the graph
    most = max((a + r for a, r in stat.values()), default=1)
    for path, (add, rem) in stat.items():
        scale = min(1.0, room / most)
        plus, minus = round(add * scale), round(rem * scale)
        lines.append(f" {path:<{width}} | {add + rem:>3} {'+' * plus}{'-' * minus}")
    ins, dels = sum(a for a, _ in stat.values()), sum(r for _, r in stat.values())
    lines.append(f" {len(stat)} files changed, {ins} insertions(+), {dels} deletions(-)")
    return "\n".join(lines)


def cover_letter(
    cmp: Comparison, files: Sequence[tuple[str, bytes]], commands: Sequence[str], series: str = ""
) -> str:
    """The whole cover letter: mbox header, rationale, evidence, shortlog and diffstat.

    ``series`` names the directory of ``files`` (``10.2``): the evidence says when the runs used
    another port of the series.
    """
    first = files[0][1].decode("utf-8", "replace") if files else ""
    author = re.search(r"^From: (.+)$", first, re.MULTILINE)
    # the last patch's date, so the letter only changes when the series or the evidence does
    last = files[-1][1].decode("utf-8", "replace") if files else ""
    when = re.search(r"^Date: (.+)$", last, re.MULTILINE)
    date = when.group(1) if when else "Thu, 1 Jan 1970 00:00:00 +0000"
    header = (
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        f"From: {author.group(1) if author else 'vfiobench <vfiobench@localhost>'}\n"
        f"Date: {date}\n"
        f"Subject: [PATCH 0/{len(files)}] {SUBJECT}\n"
    )
    name = author.group(1).split("<")[0].strip() if author else "vfiobench"
    return "\n".join(
        [
            header,
            INTRO,
            "",
            evidence(cmp, commands, series),
            shortlog_and_diffstat(files, name),
            "",
            "-- ",
            "vfiobench",
            "",
        ]
    )


def reproduce_commands(cmp: Comparison, experiment: str | None, letter: Path) -> list[str]:
    """The commands that make these runs and this letter again (from the experiments' records)."""
    from vfiobench.analysis.precision import experiment_records

    records = experiment_records(cmp.runs)
    releases = sorted({str(r.meta.labels["release"]) for r in cmp.runs if r.meta.labels.get("release")})
    out = [f"vfiobench lab build --release {r}" for r in releases]
    out += [f"vfiobench qemu build --release {r} --patch msix-mask-auto" for r in releases]
    for name, data in records.items():
        if experiment is not None and name != experiment:
            continue
        # an experiment recorded in parts (one spec each): every part, then one report over them all
        parts = data.get("parts") or [{"path": data.get("path")}]
        wheres = []
        for part in parts:
            spec = str(part.get("path") or name)
            where = f"data/experiments/{Path(spec).stem if part.get('path') else name}"
            out += [f"vfiobench run {spec} \\", f"    --out {where}"]
            wheres.append(f"{where}/runs")
        out.append("vfiobench report \\")
        out += [f"    {w} \\" for w in wheres]
        out.append(f"    --no-runs --experiment {name} --cover-letter {letter.name}")
    return out


def write_cover_letter(
    cmp: Comparison,
    out: Path,
    files: Sequence[tuple[str, bytes]],
    commands: Sequence[str],
    series: str = "",
) -> Path:
    """Write :func:`cover_letter` to ``out`` (parents created); returns ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(cover_letter(cmp, files, commands, series), encoding="utf-8")
    return out
