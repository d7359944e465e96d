"""Recording from a notebook: probes on a running QEMU, a Bokeh figure updated in place, the run at the end.

:func:`record` blocks the cell for ``duration`` (or until the process exits, or the kernel is
interrupted) and returns the :class:`~vfiobench.store.Run`; :class:`Recording` does the same from
cells of their own (``start()`` returns at once, ``stop()`` returns the run). The probes, the
run directory and ``run.json`` are exactly those of ``vfiobench record`` (the same
:class:`~vfiobench.probes.tracer.Tracer` and :class:`~vfiobench.store.RunWriter`); a background
thread drains the rings.

While recording, every ``interval`` seconds the figure is replaced in place (a display with a
``display_id`` and ``update_display_data`` messages, which JupyterLab, VS Code, nbclient and
papermill all apply): events per second of each probe over time, and each probe's call durations
over the whole recording in log-linear buckets. BokehJS is displayed once beside it (inline, never
fetched), so the notebook still renders its last figure once saved. The figure is drawn afresh at
each update (zoom and pan reset), with nothing beyond Bokeh and IPython: no notebook extension.

Example:
    >>> import vfiobench as vb
    >>> run = vb.record(pid=1234, probes=["pba_toggle"], duration=10)      # doctest: +SKIP
    >>> rec = vb.Recording(pid=1234).start()                                # doctest: +SKIP
    >>> run = rec.stop()                                                    # doctest: +SKIP
    >>> run.meta.probes["pba_toggle"].events, rec.updates                   # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from vfiobench.probes.histogram import DurationCounts
    from vfiobench.probes.tracer import Tracer
    from vfiobench.store import Run, RunMeta

import numpy as np

#: Where a recording goes when no ``out`` is given (relative to the working directory).
DEFAULT_DIR = Path("data/runs")


def default_out(pid: int) -> Path:
    """``data/runs/record-<pid>-<UTC time>``."""
    return DEFAULT_DIR / f"record-{pid}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


class _Series:
    """What the figure shows: events per interval per probe, and each probe's durations."""

    def __init__(self, names: Sequence[str]) -> None:
        from vfiobench.probes.histogram import DurationCounts

        self.names = list(names)
        self.pending = dict.fromkeys(self.names, 0)
        self.t_s: list[float] = []
        self.span_s: list[float] = []
        self.rates: dict[str, list[float]] = {n: [] for n in self.names}
        self.durations: dict[str, DurationCounts] = {n: DurationCounts() for n in self.names}
        self.lock = threading.Lock()

    def observe(self, name: str, rows: np.ndarray[Any, Any]) -> None:
        with self.lock:
            self.pending[name] = self.pending.get(name, 0) + int(rows.size)
            if rows.dtype.names and "dur_ns" in rows.dtype.names and name != "irq_path":
                self.durations[name].add(rows["dur_ns"])

    def close_interval(self, t_s: float, span_s: float) -> None:
        with self.lock:
            self.t_s.append(t_s)
            self.span_s.append(span_s)
            for n in self.names:
                self.rates[n].append(self.pending[n] / span_s if span_s > 0 else 0.0)
                self.pending[n] = 0

    def frames(self) -> tuple[Any, Any]:
        """The rates (``probe, t_s, span_s, rate_per_s``) and histograms (``probe, lo_ns, hi_ns, count``)."""
        import pandas as pd

        with self.lock:
            rates = pd.DataFrame(
                {
                    "probe": np.repeat(self.names, len(self.t_s)),
                    "t_s": np.tile(self.t_s, len(self.names)),
                    "span_s": np.tile(self.span_s, len(self.names)),
                    "rate_per_s": np.concatenate([self.rates[n] for n in self.names]) if self.names else [],
                }
            )
            hists = [pd.DataFrame(d.table()).assign(probe=n) for n, d in self.durations.items() if d.total]
        hist = (
            pd.concat(hists, ignore_index=True)
            if hists
            else pd.DataFrame({"probe": [], "lo_ns": [], "hi_ns": [], "count": []})
        )
        return rates, hist


class Recording:
    """Record a run from a notebook, with a live figure; :meth:`start`, then :meth:`stop` or :meth:`wait`.

    Args:
        pid: the QEMU process (or any process) to trace.
        probes: probe names (default: ``set_irqs_ioctl``, ``pba_toggle``, ``transaction_commit``).
        out: the run directory to create (default: :func:`default_out`).
        duration: seconds to record (None: until :meth:`stop`, or the process exits).
        qemu: the binary for the uprobes (default: ``/proc/PID/exe``).
        variant: the run's variant label.
        run_id: the run's id (default: the name of ``out``).
        interval: seconds between figure updates.
        display: show the figure (False: record only; :meth:`figure` still draws it).

    Attributes:
        updates: how many times the displayed figure was replaced so far.
        run: the recorded run, once stopped.
        why: why the recording stopped (``"duration"``, ``"stopped"``, ``"target exited"``).
    """

    def __init__(
        self,
        pid: int,
        probes: Sequence[str] | None = None,
        out: str | os.PathLike[str] | None = None,
        *,
        duration: float | None = None,
        qemu: str | os.PathLike[str] | None = None,
        variant: str = "unlabelled",
        run_id: str | None = None,
        interval: float = 1.0,
        display: bool = True,
    ) -> None:
        from vfiobench.errors import VfioBenchError
        from vfiobench.probes.tracer import probe_names

        if pid <= 0:
            raise VfioBenchError(f"pid {pid} is not a process", "pass the pid of the running QEMU")
        if duration is not None and duration <= 0:
            raise VfioBenchError(f"duration {duration} must be positive")
        if interval <= 0:
            raise VfioBenchError(f"interval {interval} must be positive")
        self.pid = pid
        self.names = probe_names(probes)
        self.out = Path(out) if out is not None else default_out(pid)
        self.duration = duration
        self.qemu = qemu
        self.variant = variant
        self.run_id = run_id or self.out.name
        self.interval = interval
        self.display = display
        self.updates = 0
        self.run: Run | None = None
        self.why: str | None = None
        self.series = _Series(self.names)
        self.tracer: Tracer | None = None
        self._meta: RunMeta | None = None
        self._thread: threading.Thread | None = None
        self._attached = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._handle: Any = None
        self._t0 = 0.0
        self._last_tick = 0.0

    # ---- control ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True from :meth:`start` until the recording has ended."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Resolve (named errors now), attach, show the figure; returns once the probes are attached.

        Raises:
            VfioBenchError: what ``vfiobench record`` would say (no root, missing symbol, ...).
        """
        from vfiobench.errors import VfioBenchError
        from vfiobench.probes.tracer import Tracer
        from vfiobench.store import RunMeta

        if self._thread is not None:
            raise VfioBenchError("this recording was already started", "create a new Recording")
        self.tracer = Tracer(self.pid, self.qemu, self.names)
        self.tracer.resolve()
        self.tracer.observers.append(self.series.observe)
        self._meta = RunMeta(run_id=self.run_id, variant=self.variant, source="host")
        self._thread = threading.Thread(target=self._record, name="vfiobench-recording", daemon=True)
        self._thread.start()
        self._attached.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        if self.display:
            self._show_first()
        return self

    def stop(self) -> Run:
        """End the recording (probes detached, everything drained and saved); returns the run."""
        self._stop.set()
        return self.wait()

    def wait(self, timeout: float | None = None) -> Run:
        """Wait for the recording to end (its duration, :meth:`stop`, the process's exit); the run.

        A kernel interrupt (Ctrl-C, the stop button) while waiting ends the recording normally.

        Raises:
            VfioBenchError: the recording was never started, or did not end within ``timeout``.
            BaseException: what the recording thread raised.
        """
        from vfiobench.errors import VfioBenchError
        from vfiobench.store import load_run

        if self._thread is None:
            raise VfioBenchError("this recording was not started", "call start() first")
        try:
            self._thread.join(timeout)
        except KeyboardInterrupt:
            self._stop.set()
            self._thread.join()
        if self._thread.is_alive():
            raise VfioBenchError(f"the recording is still running after {timeout} s", "call stop()")
        if self._error is not None:
            raise self._error
        if self.run is None:
            self.run = load_run(self.out)
            if self.display:
                self._update()  # the last interval and the final counts
        return self.run

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    # ---- the recording thread -------------------------------------------------------------------

    def _record(self) -> None:
        from vfiobench.store import RunWriter

        assert self.tracer is not None and self._meta is not None
        try:
            with RunWriter(self.out, self._meta) as writer:
                self.tracer.writer = writer
                with self.tracer:
                    self._t0 = self._last_tick = time.monotonic()
                    self._attached.set()
                    self.why = self.tracer.run(self.duration, after_poll=self._after_poll)
            self._close_interval()
        except BaseException as e:
            self._error = e
        finally:
            self._attached.set()

    def _after_poll(self, began_ns: int) -> str | None:
        if self._stop.is_set():
            return "stopped"
        if time.monotonic() - self._last_tick >= self.interval:
            self._close_interval()
            if self.display:
                self._update()
        return None

    def _close_interval(self) -> None:
        now = time.monotonic()
        span = now - self._last_tick
        if span > 0:
            self.series.close_interval(self._last_tick - self._t0, span)
        self._last_tick = now

    # ---- the figure -----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Events recorded so far, per probe."""
        return dict(self.tracer.counts) if self.tracer is not None else dict.fromkeys(self.names, 0)

    def figure(self) -> Any:
        """The figure as it stands: a title line, rates over time, durations (a Bokeh layout)."""
        from bokeh.layouts import column
        from bokeh.models.widgets.markups import Div

        from vfiobench.plots import plot_latency_histogram, plot_rate_timeline

        rates, hist = self.series.frames()
        elapsed = (time.monotonic() - self._t0) if self._t0 else 0.0
        state = "recording" if self.run is None else f"done ({self.why})"
        counts = " · ".join(f"{n} {c:,}" for n, c in self.counts().items())
        head = Div(
            text=f"<b>vfiobench record</b> pid {self.pid} · {state} · {elapsed:,.1f} s · "
            f"update {self.updates} · events: {counts}",
            name="vfb-live-status",
        )
        p_rates = plot_rate_timeline(rates, by="probe", title="Events per second")
        p_rates.xaxis.axis_label = "time since the recording started (s)"
        p_hist = plot_latency_histogram(
            hist, by="probe", normalize=False, title="Call durations (whole recording)"
        )
        return column(head, p_rates, p_hist)

    def _show_first(self) -> None:
        from IPython.display import HTML, display

        from vfiobench.plots.embed import bokeh_parts

        resources, plot = bokeh_parts(self.figure())
        if resources:
            display(HTML(resources))  # type: ignore[no-untyped-call]
        self._handle = display(HTML(plot), display_id=True)  # type: ignore[no-untyped-call]

    def _update(self) -> None:
        from IPython.display import HTML

        from vfiobench.plots.embed import bokeh_parts

        if self._handle is None:
            return
        self.updates += 1
        _, plot = bokeh_parts(self.figure())
        self._handle.update(HTML(plot))  # type: ignore[no-untyped-call]


def record(
    pid: int,
    probes: Sequence[str] | None = None,
    duration: float | None = None,
    out: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Run:
    """Record a run with a live figure, blocking until ``duration`` ends; returns the run.

    ``duration`` None records until the process exits or the kernel is interrupted (the run is
    then complete, as with Ctrl-C in ``vfiobench record``). ``options`` are those of
    :class:`Recording` (``qemu``, ``variant``, ``run_id``, ``interval``, ``display``).

    Raises:
        VfioBenchError: what ``vfiobench record`` would say (no root, missing symbol, ...).
    """
    return Recording(pid, probes, out, duration=duration, **options).start().wait()
