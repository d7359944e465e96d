"""Per-interrupt timeline assembly for 1 million interrupts, against pandas merge_asof and a naive loop.

Workload: ``--n`` mask-every-irq interrupts on two alternating vectors, shaped like a stock QEMU
cycle with the ``irq_path`` probe attached (per interrupt: host IRQ, eventfd signal, QEMU
``vfio_msi_interrupt``, ``msix_set_pending``, ``msix_notify``; two SET_IRQS ioctls each holding a
``vfio_msi_set_vector_signal``; two PBA toggles each tail-calling a commit; two RCU-thread commits;
the workload's trigger, unmask and delivery), 15 probe events per interrupt. ``--lose`` drops that
fraction of the probe events at random, so missing milestones are exercised too.

* vfiobench: :func:`vfiobench.analysis.timeline.assemble_timeline` on all ``--n`` interrupts, best
  of ``--repeat``; its peak memory is measured in a separate pass under ``tracemalloc`` (numpy and
  pandas report their buffers to it), above what the input tables already hold;
* baseline 1: :func:`merge_asof_timeline`, the same matching with ``pandas.merge_asof`` (one forward
  as-of join per kind of event), on all ``--n`` interrupts, time and peak memory;
* baseline 2: :func:`naive_timeline`, the obvious per-interrupt loop (for each interrupt, for each
  kind of event, a boolean mask over the table for its window, then the earliest row), on the first
  ``--naive-n`` interrupts of the same data, extrapolated linearly to ``--n``. The extrapolation
  flatters the baseline: each of its masks scans the whole table, so its time per interrupt grows
  with the run's length.

All three are checked to agree exactly (every milestone of every interrupt) before anything is
printed.

Usage::

    python -m benchmarks timeline                         # via the runner (make bench)
    python -m benchmarks.bench_timeline --n 100000        # smaller, quicker
"""

from __future__ import annotations

import argparse
import itertools
import time
import tracemalloc
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from vfiobench import schema
from vfiobench.analysis.timeline import (
    IRQ_PATH,
    MILESTONE_NAMES,
    SPECS,
    CallSpec,
    assemble_timeline,
    ts_column,
)

US = 1_000


def _lognormal(rng: np.random.Generator, median_us: float, sigma: float, n: int) -> Any:
    return np.rint(rng.lognormal(np.log(median_us * US), sigma, n)).astype(np.int64) + 1


def make_tables(
    n: int, *, seed: int = 0, lose: float = 0.0, vectors: int = 2, shuffle: bool = False
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """A run's workload table and probe tables for ``n`` sequential masked interrupts.

    Args:
        n: interrupts (cycles), vector ``i % vectors``.
        seed: RNG seed.
        lose: fraction of probe events dropped at random (the workload is never lost).
        vectors: vectors used in turn.
        shuffle: return every table's rows in random order (events arriving out of order).

    Returns:
        ``(workload, tables)`` with the columns of :mod:`vfiobench.schema` plus
        ``irq_path``; the QEMU main thread is tid 1, its RCU thread tid 2.
    """
    rng = np.random.default_rng(seed)
    vec = (np.arange(n) % vectors).astype(np.int64)
    gap = _lognormal(rng, 1000, 0.3, n)
    mask_io = _lognormal(rng, 300, 0.4, n)
    mask_svs = mask_io // 2
    svs = _lognormal(rng, 196, 0.7, n)
    io = svs + _lognormal(rng, 125, 0.6, n)
    own_on, own_off = _lognormal(rng, 200, 0.5, n), _lognormal(rng, 200, 0.5, n)
    com_on, com_off = _lognormal(rng, 1250, 0.45, n), _lognormal(rng, 1250, 0.45, n)
    poll = _lognormal(rng, 2000, 0.3, n)
    deliver = _lognormal(rng, 500, 0.5, n)
    # one cycle, offsets from its start
    o_mask = 100 * US
    o_trig = o_mask + mask_io + gap
    o_host = o_trig + _lognormal(rng, 20, 0.3, n)
    o_efd = o_host + 3 * US
    o_qemu = o_efd + _lognormal(rng, 50, 0.5, n)
    o_on = o_qemu + 10 * US
    o_pend = o_on + own_on + com_on + 5 * US
    o_unmask = o_pend + poll
    o_io = o_unmask + 30 * US
    o_off = o_io + io + 20 * US
    o_del = o_off + own_off + com_off + deliver
    length = o_del + gap
    start = 10**12 + np.concatenate([[0], np.cumsum(length)[:-1]])

    def at(offset: Any) -> Any:
        return start + offset

    workload = pd.DataFrame(
        {
            "cycle": np.arange(n, dtype=np.int64),
            "vector": vec.astype(np.int32),
            "trigger_ts_ns": at(o_trig),
            "unmask_ts_ns": at(o_unmask),
            "delivered_ts_ns": at(o_del),
            "latency_ns": o_del - o_trig,
            "delivered": np.ones(n, dtype=bool),
        }
    )
    one = np.ones(n, dtype=np.int64)
    irq_path = pd.DataFrame(
        {
            "ts_ns": np.concatenate([at(o_host), at(o_efd), at(o_qemu), at(o_pend), at(o_pend) + US]),
            "event": pd.Categorical.from_codes(
                np.repeat(np.arange(5), n),
                ["host_irq", "eventfd_signal", "qemu_irq", "msix_set_pending", "msix_notify"],
            ),
            # the eventfd signal does not know its vector: matched by time window
            "vector": np.concatenate([vec, -one, vec, vec, vec]).astype(np.int32),
            "tid": np.concatenate([one * 0, one * 0, one, one, one]),
        }
    )
    set_irqs = pd.DataFrame(
        {
            "ts_ns": np.concatenate([at(o_mask), at(o_io)]),
            "dur_ns": np.concatenate([mask_io, io]),
            "tid": 1,
            "fd": 15,
            "ret": 0,
            "index": 2,
            "start": np.concatenate([vec, vec]),
            "count": 1,
            "flags": 36,
        }
    )
    set_vector_signal = pd.DataFrame(
        {
            "ts_ns": np.concatenate([at(o_mask) + 20 * US, at(o_io) + (io - svs) // 3]),
            "dur_ns": np.concatenate([mask_svs, svs]),
            "tid": 1,
            "vector": np.concatenate([vec, vec]).astype(np.int32),
            "fd": np.concatenate([one * 18, one * 19]).astype(np.int32),
        }
    )
    pba = pd.DataFrame(
        {
            "ts_ns": np.concatenate([at(o_on), at(o_off)]),
            "dur_ns": np.concatenate([own_on + com_on, own_off + com_off]),
            "tid": 1,
            "mr": np.uint64(0x55D0C0A0B2C0),
            "enabled": np.concatenate([one > 0, one < 0]),
            "is_pba": True,
        }
    )
    # commits: the two the toggles tail-call (main thread), two on QEMU's RCU thread that overlap them
    rcu_ts = np.concatenate([at(o_on) + own_on // 2, at(o_off) + own_off // 2])
    commits = pd.DataFrame(
        {
            "ts_ns": np.concatenate([at(o_on) + own_on, at(o_off) + own_off, rcu_ts]),
            "dur_ns": np.concatenate([com_on, com_off, _lognormal(rng, 10, 1.0, 2 * n)]),
            "tid": np.concatenate([np.ones(2 * n, np.int64), np.full(2 * n, 2, np.int64)]),
            "depth": 0,
        }
    )
    tables = {
        IRQ_PATH: irq_path,
        schema.SET_IRQS: set_irqs,
        schema.SET_VECTOR_SIGNAL: set_vector_signal,
        schema.PBA_TOGGLE: pba,
        schema.COMMIT: commits,
    }
    for name, df in tables.items():
        keep = rng.random(len(df)) >= lose if lose > 0 else np.ones(len(df), dtype=bool)
        order = rng.permutation(int(keep.sum())) if shuffle else np.arange(int(keep.sum()))
        tables[name] = df[keep].iloc[order].reset_index(drop=True)
    return workload, tables


# ------------------------------------------------------------------------------------------ baseline


def _spec_events(spec: CallSpec, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame | None:
    df = tables.get(spec.table)
    if df is None or "ts_ns" not in df.columns:
        return None
    rows = spec.select(df) if spec.select is not None else np.ones(len(df), dtype=bool)
    sel = df[rows]
    dur = sel["dur_ns"] if "dur_ns" in sel.columns else 0
    return pd.DataFrame(
        {
            "ts": sel["ts_ns"].astype("int64"),
            "end": sel["ts_ns"].astype("int64") + np.maximum(dur, 0),
            "tid": sel["tid"].astype("int64") if "tid" in sel.columns else 0,
            "vector": (spec.vector(sel) if spec.vector is not None else np.full(len(sel), -1)).astype(
                "int64"
            ),
            "pos": np.arange(len(sel)),
        }
    )


def _recorded(
    workload: pd.DataFrame, tables: Mapping[str, pd.DataFrame]
) -> tuple[dict[str, pd.DataFrame], list[CallSpec]]:
    """The event specs this run recorded (in path order) and their events, for both baselines."""
    events: dict[str, pd.DataFrame] = {}
    specs: list[CallSpec] = []
    for spec in SPECS:
        if spec.table == schema.WORKLOAD:
            if "unmask_ts_ns" in workload.columns:
                specs.append(spec)
            continue
        if spec.parent is not None and spec.parent not in events:
            continue
        ev = _spec_events(spec, tables)
        if ev is not None and len(ev):
            events[spec.key] = ev
            specs.append(spec)
    return events, specs


def _on_path(specs: list[CallSpec], found: Any, need: float) -> list[CallSpec]:
    """The specs whose milestones were ``found(name)`` at least ``need`` times (parents first)."""
    kept: list[CallSpec] = []
    for spec in specs:
        names = [m for m in (spec.entry, spec.ret) if m is not None]
        parent_ok = spec.parent is None or any(k.key == spec.parent for k in kept)
        if parent_ok and all(found(m) >= need for m in names):
            kept.append(spec)
    return kept


def _naive_pass(
    workload: pd.DataFrame, events: Mapping[str, pd.DataFrame], specs: list[CallSpec]
) -> list[dict[str, int | None]]:
    trig = workload["trigger_ts_ns"].astype("int64").tolist()
    vec = (
        workload["vector"].astype("int64").clip(lower=0).tolist() if "vector" in workload else [0] * len(trig)
    )
    dts = workload["delivered_ts_ns"].astype("int64").tolist()
    ok_del = workload["delivered"].astype(bool).tolist() if "delivered" in workload else [True] * len(trig)
    unmask = workload["unmask_ts_ns"].astype("int64").tolist() if "unmask_ts_ns" in workload else None
    big = np.iinfo(np.int64).max
    # each interrupt's window ends before the next trigger (of any vector / of its own vector)
    next_any = [big] * len(trig)
    next_same = [big] * len(trig)
    order = sorted(range(len(trig)), key=lambda j: (trig[j], j))
    for a, b in itertools.pairwise(order):
        next_any[a] = trig[b] - 1
    last: dict[int, int] = {}
    for j in order:
        if vec[j] in last:
            next_same[last[vec[j]]] = trig[j] - 1
        last[vec[j]] = j
    rows: list[dict[str, int | None]] = []
    for i, t in enumerate(trig):
        delivered = ok_del[i] and dts[i] >= t and dts[i] > 0
        end = dts[i] if delivered else big
        hi_any = min(end, next_any[i])
        hi_same = min(end, next_same[i])
        row: dict[str, int | None] = {"trigger": t}
        lo = t
        found_rows: dict[str, Any] = {}
        for spec in specs:
            if spec.table == schema.WORKLOAD:
                assert unmask is not None
                u = unmask[i]
                row["unmask"] = u if t <= u <= hi_any else None
                if row["unmask"] is not None:
                    lo = max(lo, u)
                continue
            ev = events[spec.key]
            if spec.parent is None:
                same = (
                    (ev["vector"] >= 0) & (ev["vector"] == vec[i]) & (ev["ts"] >= lo) & (ev["ts"] <= hi_same)
                )
                other = (ev["vector"] < 0) & (ev["ts"] >= lo) & (ev["ts"] <= hi_any)
                cand = ev[same | other].assign(vectorless=lambda d: d["vector"] < 0)
                cand = cand.sort_values(["ts", "vectorless", "pos"])
                hit = cand.iloc[0] if len(cand) else None
            else:
                parent = found_rows.get(spec.parent)
                hit = None
                if parent is not None:
                    inner = ev[
                        (ev["tid"] == parent["tid"])
                        & (ev["ts"] >= parent["ts"])
                        & (ev["ts"] <= parent["end"])
                    ]
                    inner = inner.sort_values(["ts", "pos"])
                    if len(inner) and inner.iloc[0]["end"] <= parent["end"]:
                        hit = inner.iloc[0]
            found_rows[spec.key] = hit
            if spec.entry is not None:
                row[spec.entry] = None if hit is None else int(hit["ts"])
            if spec.ret is not None:
                row[spec.ret] = None if hit is None else int(hit["end"])
            if hit is not None and spec.parent is None:
                lo = max(lo, int(hit["end"] if spec.ret is not None else hit["ts"]))
        row["delivered"] = dts[i] if delivered else None
        rows.append(row)
    return rows


def naive_timeline(
    workload: pd.DataFrame, tables: Mapping[str, pd.DataFrame], *, expect_fraction: float = 0.5
) -> pd.DataFrame:
    """The same timeline, the obvious way: a Python loop over interrupts, a pandas mask per event kind.

    Returns:
        ``<milestone>_ts_ns`` for every milestone (nullable Int64), one row per interrupt.
    """
    events, specs = _recorded(workload, tables)
    rows = _naive_pass(workload, events, specs)
    delivered = [r["delivered"] is not None for r in rows]
    base = delivered if any(delivered) else [True] * len(rows)
    kept = _on_path(
        specs,
        lambda m: sum(1 for r, b in zip(rows, base, strict=True) if b and r.get(m) is not None),
        expect_fraction * max(sum(base), 1),
    )
    if len(kept) != len(specs):
        rows = _naive_pass(workload, events, kept)
    on_path = {"trigger", "delivered"} | {m for s in kept for m in (s.entry, s.ret) if m is not None}
    out = {
        ts_column(m): pd.array([r.get(m) if m in on_path else None for r in rows], dtype="Int64")
        for m in MILESTONE_NAMES
    }
    return pd.DataFrame(out)


def _asof_windows(workload: pd.DataFrame) -> pd.DataFrame:
    """Per interrupt: trigger, vector, delivered time (NA if not) and both window ends, with pandas."""
    big = 2**62  # "no end"; exact as a float64, unlike int64's maximum
    w = pd.DataFrame(
        {
            "i": np.arange(len(workload)),
            "trigger": workload["trigger_ts_ns"].astype("int64").to_numpy(),
            "vector": workload["vector"].astype("int64").clip(lower=0).to_numpy()
            if "vector" in workload
            else 0,
        }
    )
    dts = workload["delivered_ts_ns"].astype("int64").to_numpy()
    ok = workload["delivered"].astype(bool).to_numpy() if "delivered" in workload else True
    w["delivered"] = np.where(ok & (dts >= w["trigger"]) & (dts > 0), dts, -1)
    end = np.where(w["delivered"] >= 0, w["delivered"], big)
    by_t = w.sort_values(["trigger", "i"], kind="stable")
    nxt = (by_t["trigger"].shift(-1) - 1).fillna(big).astype("int64")
    nxt_v = (by_t.groupby("vector")["trigger"].shift(-1) - 1).fillna(big).astype("int64")
    w["hi_any"] = np.minimum(end, nxt.reindex(w.index).to_numpy())
    w["hi_same"] = np.minimum(end, nxt_v.reindex(w.index).to_numpy())
    return w


def _asof_pass(
    w: pd.DataFrame, events: Mapping[str, pd.DataFrame], specs: list[CallSpec], unmask: Any
) -> dict[str, Any]:
    found: dict[str, Any] = {"trigger": w["trigger"].to_numpy(), "delivered": w["delivered"].to_numpy()}
    lo = w["trigger"].to_numpy().copy()
    hits: dict[str, pd.DataFrame] = {}
    for spec in specs:
        if spec.table == schema.WORKLOAD:
            ok = (unmask >= w["trigger"].to_numpy()) & (unmask <= w["hi_any"].to_numpy())
            found["unmask"] = np.where(ok, unmask, -1)
            lo = np.where(ok, np.maximum(lo, unmask), lo)
            continue
        ev = events[spec.key][["ts", "end", "tid", "vector"]]
        if spec.parent is None:
            q = w[["i", "vector", "hi_same", "hi_any"]].assign(lo=lo).sort_values("lo", kind="stable")
            with_v = ev[ev["vector"] >= 0].sort_values("ts", kind="stable")
            a = pd.merge_asof(q, with_v, left_on="lo", right_on="ts", by="vector", direction="forward")
            a_ok = a["ts"].notna() & (a["ts"] <= a["hi_same"])
            no_v = ev[ev["vector"] < 0].drop(columns="vector").sort_values("ts", kind="stable")
            b = pd.merge_asof(q, no_v, left_on="lo", right_on="ts", direction="forward")
            b_ok = b["ts"].notna() & (b["ts"] <= b["hi_any"])
            take_b = b_ok & (~a_ok | (b["ts"] < a["ts"]))
            cols = ["ts", "end", "tid"]
            hit = a[cols].astype("float64")
            hit.loc[~a_ok.to_numpy(), cols] = np.nan
            hit.loc[take_b.to_numpy(), cols] = b.loc[take_b, cols].astype("float64").to_numpy()
            hit.index = q["i"].to_numpy()
            hit = hit.sort_index()
        else:
            parent = hits[spec.parent].dropna(subset=["ts"]).sort_values("ts", kind="stable")
            q = parent.rename_axis("i").reset_index()
            q = q.rename(columns={"ts": "p_ts", "end": "p_end", "tid": "p_tid"})
            q["p_tid"] = q["p_tid"].astype("int64")
            q["p_ts"] = q["p_ts"].astype("int64")
            child = ev.sort_values("ts", kind="stable")
            c = pd.merge_asof(
                q, child, left_on="p_ts", right_on="ts", left_by="p_tid", right_by="tid", direction="forward"
            )
            ok = c["ts"].notna() & (c["ts"] <= c["p_end"]) & (c["end"] <= c["p_end"])
            hit = c[["ts", "end", "tid"]].astype("float64")
            hit.loc[~ok.to_numpy(), :] = np.nan
            hit.index = c["i"].to_numpy()
            hit = hit.reindex(w["i"].to_numpy())
        hits[spec.key] = hit
        ts = hit["ts"].to_numpy(dtype=np.float64, na_value=np.nan)
        end = hit["end"].to_numpy(dtype=np.float64, na_value=np.nan)
        has = ~np.isnan(ts)
        if spec.entry is not None:
            found[spec.entry] = np.where(has, np.nan_to_num(ts), -1).astype(np.int64)
        if spec.ret is not None:
            found[spec.ret] = np.where(has, np.nan_to_num(end), -1).astype(np.int64)
        if spec.parent is None:
            last = end if spec.ret is not None else ts
            lo = np.where(has, np.maximum(lo, np.nan_to_num(last).astype(np.int64)), lo)
    return found


def merge_asof_timeline(
    workload: pd.DataFrame, tables: Mapping[str, pd.DataFrame], *, expect_fraction: float = 0.5
) -> pd.DataFrame:
    """The same timeline with ``pandas.merge_asof`` (one forward as-of join per kind of event).

    A vectorised pandas baseline: per event kind, each interrupt's earliest event at or after its
    lower bound (``by`` vector, and again without for events that carry none), then the window
    check; nested calls joined ``by`` thread from their parent's entry. Same path rule.

    Returns:
        ``<milestone>_ts_ns`` for every milestone (nullable Int64), one row per interrupt.
    """
    events, specs = _recorded(workload, tables)
    w = _asof_windows(workload)
    unmask = workload["unmask_ts_ns"].astype("int64").to_numpy() if "unmask_ts_ns" in workload else None
    found = _asof_pass(w, events, specs, unmask)
    base = found["delivered"] >= 0
    base = base if base.any() else np.ones(len(w), dtype=bool)
    kept = _on_path(
        specs, lambda m: int(((found[m] >= 0) & base).sum()), expect_fraction * max(int(base.sum()), 1)
    )
    if len(kept) != len(specs):
        found = _asof_pass(w, events, kept, unmask)
    on_path = {"trigger", "delivered"} | {m for s in kept for m in (s.entry, s.ret) if m is not None}
    out = {}
    for m in MILESTONE_NAMES:
        values = found.get(m) if m in on_path else None
        if values is None:
            out[ts_column(m)] = pd.array([None] * len(w), dtype="Int64")
        else:
            out[ts_column(m)] = pd.arrays.IntegerArray(np.maximum(values, 0).astype(np.int64), values < 0)
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------------------------- main


def timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def peak_memory(fn: Any) -> int:
    """Peak bytes allocated (tracemalloc: Python objects, numpy and pandas buffers) while ``fn`` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return int(peak - base)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=1_000_000, help="interrupts (default 1M)")
    p.add_argument("--naive-n", type=int, default=1_000, help="interrupts for the naive loop (default 1000)")
    p.add_argument(
        "--lose", type=float, default=0.001, help="fraction of probe events dropped (default 0.001)"
    )
    p.add_argument("--repeat", type=int, default=3, help="vfiobench runs; the best is reported")
    args = p.parse_args(argv)
    t_gen, (workload, tables) = timed(lambda: make_tables(args.n, lose=args.lose))
    n_events = sum(len(t) for t in tables.values())
    in_bytes = sum(int(t.memory_usage(deep=True).sum()) for t in [workload, *tables.values()])
    print(
        f"{args.n:,} interrupts, {n_events:,} probe events ({n_events / args.n:.1f}/interrupt, "
        f"{args.lose:.2%} lost), input tables {in_bytes / 2**20:,.0f} MiB; generated in {t_gen:.1f} s"
    )
    # the two must agree before either is timed
    k = min(args.naive_n, args.n)
    small_w = workload.iloc[:k].reset_index(drop=True)
    hi = int(small_w["delivered_ts_ns"].max())
    small_t = {name: t[t["ts_ns"] <= hi].reset_index(drop=True) for name, t in tables.items()}
    t_naive, ref = timed(lambda: naive_timeline(small_w, small_t))
    ours_small = assemble_timeline(small_w, small_t)
    for m in MILESTONE_NAMES:
        col = ts_column(m)
        if not ours_small[col].equals(ref[col]):
            print(f"MISMATCH in {col} between vfiobench and the naive loop")
            return 1
    times = []
    tl = None
    for _ in range(max(1, args.repeat)):
        t, tl = timed(lambda: assemble_timeline(workload, tables))
        times.append(t)
    assert tl is not None
    best = min(times)
    peak = peak_memory(lambda: assemble_timeline(workload, tables))
    t_asof, asof = timed(lambda: merge_asof_timeline(workload, tables))
    asof_peak = peak_memory(lambda: merge_asof_timeline(workload, tables))
    for m in MILESTONE_NAMES:
        col = ts_column(m)
        if not tl[col].equals(asof[col]):
            print(f"MISMATCH in {col} between vfiobench and the merge_asof baseline")
            return 1
    del asof
    out_bytes = int(tl.memory_usage(deep=True).sum())
    naive_per_irq = t_naive / k
    naive_est = naive_per_irq * args.n
    complete = float(tl["complete"].mean())
    print(f"{'':46s}{'time (s)':>10s}")
    print(f"{'vfiobench assemble_timeline, ' + format(args.n, ',') + ' interrupts':46s}{best:10.2f}")
    print(f"{'pandas merge_asof baseline, same interrupts':46s}{t_asof:10.2f}")
    print(f"{'naive per-interrupt loop, ' + format(k, ',') + ' interrupts':46s}{t_naive:10.2f}")
    print(f"{'naive loop extrapolated to ' + format(args.n, ','):46s}{naive_est:10.0f}")
    print(f"ratio merge_asof / vfiobench: {t_asof / best:.1f}x (peak memory {asof_peak / peak:.1f}x)")
    print(f"ratio naive / vfiobench (extrapolated, per interrupt): {naive_est / best:,.0f}x")
    print(
        f"vfiobench throughput: {args.n / best / 1e6:.2f}M interrupts/s, "
        f"{n_events / best / 1e6:.1f}M events/s"
    )
    print(
        f"vfiobench peak memory (tracemalloc, above the inputs): {peak / 2**20:,.0f} MiB "
        f"({peak / args.n:.0f} B/interrupt); output frame {out_bytes / 2**20:,.0f} MiB"
    )
    print(
        f"complete timelines: {complete:.2%} (the rest miss a lost event); "
        f"agree with merge_asof on all {args.n:,} and with naive on {k:,}: yes"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
