"""notebooks/record.ipynb executed in a real kernel, recording the stand-in: the live figure is replaced in
place while recording and the returned run has the stand-in's exact counts.

The notebook runs under nbclient with papermill's parameters; every iopub message the kernel sends
is seen here, so the figure's updates are counted as ``update_display_data`` messages carrying the
display id of the figure the notebook first displayed, and checked again in the saved notebook.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nbclient import NotebookClient
from probe_helpers import StandIn

from vfiobench import report
from vfiobench.store import load_run

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.notebook, pytest.mark.usefixtures("bpf_ready")]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "record.ipynb"
N = 37
DELAY_US = 80_000  # ~3 s of calls
DURATION = 6.0


class CountingClient(NotebookClient):
    """Executes the notebook and keeps what the kernel said about displays."""

    def __init__(self, *args: Any, on_first_display: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_first_display = on_first_display
        self.display_ids: list[str] = []
        self.updates: list[dict[str, Any]] = []

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        kind = msg["msg_type"]
        display_id = msg.get("content", {}).get("transient", {}).get("display_id")
        if kind == "display_data" and display_id:
            self.display_ids.append(display_id)
            if len(self.display_ids) == 1:
                self.on_first_display()
        elif kind == "update_display_data":
            self.updates.append(msg["content"])
        return super().process_message(msg, cell, cell_index)


def test_the_notebook_figure_updates_in_place_and_the_run_is_exact(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn]
) -> None:
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    target = spawn(standin_bin, "toggle", N, DELAY_US, 0)
    out = tmp_path / "nb-run"
    nb = parameterize_notebook(
        load_notebook_node(str(NOTEBOOK)),  # as papermill reads it (its metadata, cell tags)
        {"pid": target.pid, "probes": ["pba_toggle"], "duration": DURATION, "out": str(out), "interval": 0.5},
    )
    with report.kernel_for_this_python() as kernel:
        client = CountingClient(
            nb,
            kernel_name=kernel,
            timeout=300,
            resources={"metadata": {"path": str(REPO)}},
            on_first_display=target.go,  # the probes are attached once the figure shows
        )
        client.execute()
    assert target.wait_done() == N
    (figure_id,) = client.display_ids
    ours = [u for u in client.updates if u["transient"]["display_id"] == figure_id]
    assert len(ours) >= 2 and len(ours) == len(client.updates)
    shown = [int(m) for u in ours for m in re.findall(r"update (\d+) ", u["data"]["text/html"])]
    assert shown == list(range(1, len(ours) + 1))  # each update replaced the figure with the next one
    assert all("Bokeh.embed.embed_items" in u["data"]["text/html"] for u in ours)
    assert all("BEGIN bokeh.min.js" not in u["data"]["text/html"] for u in ours)  # BokehJS shown once
    last = ours[-1]["data"]["text/html"]
    assert "done (duration)" in last and f"pba_toggle {N}" in last

    # the saved notebook: BokehJS once, the figure in its final state, the exact counts, no error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert sum("BEGIN bokeh.min.js" in h for h in html) == 1
    assert any(f"update {len(ours)} " in h and "done (duration)" in h for h in html)
    counts = [o["data"]["text/plain"] for o in outputs if o.output_type == "execute_result"]
    assert counts == [f"{{'pba_toggle': {{'events': {N}, 'lost': 0}}}}"]
    run = load_run(out)
    assert run.meta.status == "complete" and run.meta.probes["pba_toggle"].events == N
    assert len(run.table("pba_toggle")) == N


def test_a_recording_started_and_stopped_from_cells_keeps_every_event(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn]
) -> None:
    import vfiobench as vb

    target = spawn(standin_bin, "toggle", N, 20_000, 0)
    rec = vb.Recording(target.pid, ["pba_toggle"], tmp_path / "cells", interval=0.2, display=False)
    assert rec.start() is rec and rec.running
    target.go()  # meanwhile the notebook's other cells would run
    target.wait_done()
    time.sleep(0.5)
    run = rec.stop()
    assert not rec.running and rec.why == "stopped" and run.meta.status == "complete"
    assert run.meta.probes["pba_toggle"].events == len(run.table("pba_toggle")) == N
    assert sum(r * s for r, s in zip(rec.series.rates["pba_toggle"], rec.series.span_s, strict=True)) == (
        pytest.approx(N)
    )  # the figure's rates add up to the events
    assert len(rec.series.t_s) >= 3


def test_a_recording_of_no_process_says_so() -> None:
    import vfiobench as vb

    with pytest.raises(vb.VfioBenchError, match="pid 0 is not a process"):
        vb.Recording(0)
