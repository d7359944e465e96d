"""One report page of a batch: what was rendered, from what, and what it found (the index lists these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

PageKind = Literal["run", "compare"]


@dataclass
class Page:
    """One rendered (or attempted) report page."""

    kind: PageKind
    name: str
    html: Path
    ipynb: Path
    parameters: dict[str, Any]
    error: str | None = None
    run_id: str | None = None
    variant: str | None = None
    status: str | None = None
    source: str | None = None
    lost_events: int | None = None
    checks: str | None = None
    verdicts: list[str] = field(default_factory=list)
    trace: Path | None = None  # the run's Perfetto trace beside the page (run pages with events)
    rendered: bool = True  # False: listed on the index (its checks and lost events) without a page

    @property
    def ok(self) -> bool:
        """True when the notebook ran to the end."""
        return self.error is None
