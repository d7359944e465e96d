"""vfiobench: a workbench for the VFIO PCI passthrough MSI-X interrupt path in QEMU/KVM.

Layers, each importing only the ones below it::

    probes (BCC) ─► store (run.json + Parquet) ─► analysis (pandas) ─► plots (Bokeh) ─► report (papermill)

Example:
    >>> import vfiobench as vb
    >>> run = vb.load_run("data/sample/<run_id>")      # doctest: +SKIP
    >>> run.table("pba_toggle").head()                  # doctest: +SKIP
"""

from vfiobench.api import load
from vfiobench.store import Run, RunSet, load_run, load_runs

__version__ = "0.1.0"

__all__ = ["Run", "RunSet", "__version__", "load", "load_run", "load_runs"]
