"""Fleet monitoring and fleet analysis: the Prometheus exporter, its rules, and SQL over many hosts' runs.

Prometheus (and whatever federates it) is the distributed engine; vfiobench adds no collector of
its own. Modules, each with one job:

- :mod:`.targets` — QEMU processes: discovery in ``/proc``, VM name and VFIO devices from the
  command line;
- :mod:`.probeset` — one target's probes (the project's tracer, count mode where the kernel can
  aggregate, streaming where a label needs each call) summed into counters and histograms;
- :mod:`.hostwide` — the SET_IRQS ioctl probe, attached once for the host and dispatched by pid;
- :mod:`.masking` — the masking-guest verdict over a sliding window;
- :mod:`.metrics` — the ``prometheus_client`` collector (every metric and label);
- :mod:`.exporter` — the loop: attach, poll, follow processes, keep exited ones a while;
- :mod:`.query` — the hive-partitioned layout of runs from many hosts and its DuckDB queries.

Shipped beside them: ``alerts.yml`` (alerting rules), ``rules.yml`` (recording rules) and
``vfiobench-exporter.service`` (systemd); see ``docs/fleet.md``. Nothing here is imported by
``import vfiobench``.
"""
