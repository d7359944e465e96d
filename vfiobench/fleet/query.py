"""Recorded runs from many hosts as one table: the fleet layout and ``vfiobench query``.

The layout (hive partitioning, which DuckDB, Spark and Trino read as columns)::

    FLEET/host=<hostname>/date=<YYYY-MM-DD>/<run_id>/run.json
                                                   /<table>.parquet ...

Each host copies its run directories into its own ``host=`` directory (e.g. ``rsync -a
data/runs/ fleet:/srv/vfiobench/host=$(hostname)/date=$(date -u +%F)/``); nothing is rewritten.
:func:`fleet_query` runs SQL over the tree with the views of :mod:`vfiobench.store.query` (``runs``
and one view per table, each with ``host``, ``date``, ``run_id`` and ``run_dir``), and adds to
``runs`` the columns ``vm`` (QEMU's ``-name`` in the run's recorded command line, else NULL) and
``device`` (its vfio-pci device when it names exactly one, else NULL).

:data:`EXAMPLES` are the queries ``vfiobench query --example NAME`` runs (and the tests check).
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from vfiobench.errors import VfioBenchError
from vfiobench.fleet.targets import parse_cmdline
from vfiobench.store import Run
from vfiobench.store.query import query

#: Named example queries: the top VMs by PBA toggles per delivered interrupt, and per-host medians.
EXAMPLES: dict[str, str] = {
    "toggles-per-interrupt": """\
-- VMs whose guests cost the most PBA toggles per delivered interrupt (probed runs)
WITH irq AS (SELECT run_dir, count(*) FILTER (WHERE delivered) AS interrupts
             FROM workload GROUP BY run_dir),
     tog AS (SELECT run_dir, count(*) FILTER (WHERE is_pba) AS pba_toggles
             FROM pba_toggle GROUP BY run_dir)
SELECT r.host, coalesce(r.vm, r.variant) AS vm, count(*) AS runs, sum(irq.interrupts)::BIGINT AS interrupts,
       sum(tog.pba_toggles) / sum(irq.interrupts) AS toggles_per_interrupt
FROM runs AS r JOIN irq USING (run_dir) JOIN tog USING (run_dir)
GROUP BY ALL
ORDER BY toggles_per_interrupt DESC, r.host, vm
LIMIT 10""",
    "host-medians": """\
-- Per host: median probe-free latency, median PBA toggle and SET_IRQS ioctl (µs)
WITH lat AS (SELECT w.host, median(w.latency_ns) / 1e3 AS latency_p50_us
             FROM workload AS w JOIN runs AS r USING (run_dir)
             WHERE w.delivered AND r.kind = 'probe-free' GROUP BY w.host),
     tog AS (SELECT host, median(dur_ns) / 1e3 AS pba_toggle_p50_us
             FROM pba_toggle WHERE is_pba GROUP BY host),
     ioc AS (SELECT host, median(dur_ns) / 1e3 AS set_irqs_p50_us
             FROM set_irqs_ioctl GROUP BY host)
SELECT host, latency_p50_us, pba_toggle_p50_us, set_irqs_p50_us
FROM lat FULL JOIN tog USING (host) FULL JOIN ioc USING (host)
ORDER BY host""",
}


def vm_columns(run: Run) -> dict[str, Any]:
    """``vm`` and ``device`` of a run, from the QEMU command line its ``run.json`` recorded."""
    name, devices = parse_cmdline(run.meta.qemu.cmdline[1:])
    return {"vm": name, "device": devices[0] if len(devices) == 1 else None}


def fleet_query(root: str | os.PathLike[str], sql: str) -> pd.DataFrame:
    """Run DuckDB SQL over every run below ``root`` (see the module docstring for the views).

    Raises:
        VfioBenchError: the SQL failed (the message is DuckDB's), or no run below ``root``.
    """
    import duckdb

    try:
        return query(root, sql, vm_columns)
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0]
        raise VfioBenchError(
            f"the query failed: {first}",
            "views: runs and one per table (pba_toggle, set_irqs_ioctl, workload, ...); try DESCRIBE runs",
        ) from None
