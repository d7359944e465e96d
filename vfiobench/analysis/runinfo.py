"""What a reviewer needs to trust runs, as tables: the runs, their builds, lost events and checks.

Every frame here is read from run.json (no probe table is loaded): one row per run
(:func:`df_runs`), per variant (:func:`df_variant_setup`, :func:`df_builds`), per (run, probe)
(:func:`df_lost_events`) or per (run, ground-truth check) (:func:`df_checks`), and their sums.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import pandas as pd

from vfiobench.analysis.compare import Comparison
from vfiobench.store import Run, RunSet

#: A command-line argument that sets an experimental ``x-*`` device property.
_PROP_ARG_RE = re.compile(r"(?:^|[,.])x-[\w-]+=")


def _runs(target: Run | RunSet) -> list[Run]:
    return [target] if isinstance(target, Run) else list(target)


def df_runs(runset: RunSet) -> pd.DataFrame:
    """One row per run.

    Returns:
        ``[run_id, variant, status, source, kind, workload, repetition, qemu_version, lost_events,
        checks]``; ``repetition`` the label (None if absent), ``checks`` ``"3/3 ok"`` or ``"none"``.
    """
    cols = [
        "run_id",
        "variant",
        "status",
        "source",
        "kind",
        "workload",
        "repetition",
        "qemu_version",
        "lost_events",
        "checks",
    ]
    if not len(runset):
        return pd.DataFrame(columns=cols)
    checks = [
        f"{sum(c.ok for c in r.meta.checks)}/{len(r.meta.checks)} ok" if r.meta.checks else "none"
        for r in runset
    ]
    df = runset.meta_frame().assign(checks=checks)
    if "repetition" not in df.columns:
        df["repetition"] = None
    return df[cols]


def df_variant_setup(runset: RunSet) -> pd.DataFrame:
    """The QEMU build, host and workload of each variant, from its first run.

    Returns:
        ``[variant, QEMU binary, version, build-id, patches, QEMU command line, host kernel,
        host CPU, workload, workload parameters]`` (column names as the pages show them).
    """
    rows = []
    for variant in runset.variants:
        r = next(r for r in runset if r.variant == variant)
        q = r.meta.qemu
        rows.append(
            {
                "variant": variant,
                "QEMU binary": q.path,
                "version": q.version,
                "build-id": q.build_id,
                "patches": ", ".join(q.patches),
                "QEMU command line": " ".join(q.cmdline),
                "host kernel": r.meta.host.kernel_release,
                "host CPU": r.meta.host.cpu_model,
                "workload": r.meta.workload.name,
                "workload parameters": json.dumps(r.meta.workload.params, sort_keys=True, default=str),
            }
        )
    return pd.DataFrame(rows)


def df_builds(runset: RunSet, variants: Sequence[str] = ()) -> pd.DataFrame:
    """One row per variant: the QEMU binary it ran and how its build is identified.

    Returns:
        ``[variant, qemu_path, version, build_id, patches, device_args, runs]``; ``device_args``
        the ``-device``/``-global`` arguments of the first run's command line that set ``x-*``
        properties; ``runs`` the number of runs; a variant whose runs disagree on the binary
        gets one row per distinct (path, build-id). Variants in ``variants`` order first.
    """
    rank = {v: i for i, v in enumerate(variants)}
    rows: dict[tuple[str, str, str], dict[str, object]] = {}
    for run in sorted(runset, key=lambda r: rank.get(r.variant, len(rank))):
        q = run.meta.qemu
        key = (run.variant, q.path, q.build_id)
        if key not in rows:
            props = [a for a in q.cmdline if _PROP_ARG_RE.search(a)]
            rows[key] = {
                "variant": run.variant,
                "qemu_path": q.path,
                "version": q.version,
                "build_id": q.build_id,
                "patches": ", ".join(q.patches) or "none",
                "device_args": " ".join(props) or "none",
                "runs": 0,
            }
        rows[key]["runs"] = int(str(rows[key]["runs"])) + 1
    cols = ["variant", "qemu_path", "version", "build_id", "patches", "device_args", "runs"]
    return pd.DataFrame(list(rows.values()), columns=cols)


def df_lost_events(target: Run | RunSet) -> pd.DataFrame:
    """Events kept and lost per probe, one row per (run, probe).

    Returns:
        ``[run_id, variant, probe, target, mode, events, lost, lost_pct, missed]``: ``lost_pct``
        lost as a percentage of events + lost (0 when the probe saw nothing); ``missed`` BPF
        program runs the kernel skipped, an upper bound of events never seen (NA where not
        measured, see :class:`vfiobench.store.ProbeStats`).
    """
    rows = []
    for r in _runs(target):
        for name, p in r.meta.probes.items():
            total = p.events + p.lost
            rows.append(
                {
                    "run_id": r.run_id,
                    "variant": r.variant,
                    "probe": name,
                    "target": p.target,
                    "mode": p.mode,
                    "events": p.events,
                    "lost": p.lost,
                    "lost_pct": 100.0 * p.lost / total if total else 0.0,
                    "missed": p.missed,
                }
            )
    cols = ["run_id", "variant", "probe", "target", "mode", "events", "lost", "lost_pct", "missed"]
    df = pd.DataFrame(rows, columns=cols)
    df["missed"] = df["missed"].astype("Int64")
    return df


def df_lost_events_by_probe(lost: pd.DataFrame) -> pd.DataFrame:
    """:func:`df_lost_events` summed over runs, one row per (variant, probe).

    Returns:
        ``[variant, probe, target, mode, events, lost, runs_with_loss, lost_pct, missed]``;
        ``missed`` NA where no run measured it.
    """
    keys = ["variant", "probe", "target", "mode"]
    summed = lost.groupby(keys, sort=False)[["events", "lost"]].sum().reset_index()
    lossy = lost[lost["lost"] > 0].groupby(keys, sort=False).size().rename("runs_with_loss").reset_index()
    summed = summed.merge(lossy, on=keys, how="left").fillna({"runs_with_loss": 0})
    summed["runs_with_loss"] = summed["runs_with_loss"].astype(int)
    total = summed["events"] + summed["lost"]
    summed["lost_pct"] = (100.0 * summed["lost"] / total.where(total > 0)).fillna(0.0)
    measured = lost.dropna(subset=["missed"]).groupby(keys, sort=False)["missed"].sum()
    return summed.merge(measured.reset_index(), on=keys, how="left")  # NA: no run measured it


def df_checks(target: Run | RunSet) -> pd.DataFrame:
    """Ground-truth checks, one row per (run, check).

    Returns:
        ``[run_id, variant, check, expected, observed, ok, detail]``.
    """
    rows = [
        {
            "run_id": r.run_id,
            "variant": r.variant,
            "check": c.name,
            "expected": c.expected,
            "observed": c.observed,
            "ok": c.ok,
            "detail": c.detail,
        }
        for r in _runs(target)
        for c in r.meta.checks
    ]
    return pd.DataFrame(rows, columns=["run_id", "variant", "check", "expected", "observed", "ok", "detail"])


def df_failed_checks(cmp: Comparison) -> pd.DataFrame:
    """Every failed ground-truth check of a comparison, with its group.

    Returns:
        ``[group, variant, run_id, check, expected, observed, detail]``, one row per failed check.
    """
    rows = [
        {
            "group": group.label,
            "variant": r.variant,
            "run_id": r.run_id,
            "check": c.name,
            "expected": c.expected,
            "observed": c.observed,
            "detail": c.detail,
        }
        for group in cmp.groups
        for r in group.runs
        for c in r.meta.checks
        if not c.ok
    ]
    return pd.DataFrame(
        rows, columns=["group", "variant", "run_id", "check", "expected", "observed", "detail"]
    )


def df_group_checks(cmp: Comparison) -> pd.DataFrame:
    """Ground-truth checks per (group, variant): how many ran, passed and failed, and which failed.

    Returns:
        ``[group, variant, runs, checks, passed, failed, failed_checks]``, groups and variants in
        page order; ``failed_checks`` names each failed check with its run count (``""`` if none).
    """
    rank = {v: i for i, v in enumerate(cmp.variants)}
    rows = []
    for group in cmp.groups:
        df = df_checks(group.runs)
        if df.empty:
            continue
        ok = df["ok"].astype(bool)
        for variant, g in sorted(df.groupby("variant", sort=False), key=lambda kv: rank.get(str(kv[0]), 0)):
            bad = g[~ok.loc[g.index]]
            names = bad.groupby("check", sort=False).size()
            rows.append(
                {
                    "group": group.label,
                    "variant": variant,
                    "runs": int(g["run_id"].nunique()),
                    "checks": len(g),
                    "passed": int(ok.loc[g.index].sum()),
                    "failed": len(bad),
                    "failed_checks": "; ".join(f"{n} ({c} runs)" for n, c in names.items()),
                }
            )
    cols = ["group", "variant", "runs", "checks", "passed", "failed", "failed_checks"]
    return pd.DataFrame(rows, columns=cols)
