"""Suite-wide: the force switch that turns a skipped prerequisite into a failure.

Tests that need root, BPF, the lab VM, a QEMU build, Chromium or a notebook kernel skip with a
printed reason where the machine lacks it (a laptop, a container). In CI they must run, so a
missing prerequisite must not pass silently as a skip. Set::

    VFIOBENCH_TEST_REQUIRE=bpf,lab,qemu,browser,notebook,prometheus,root   # may not skip
    VFIOBENCH_TEST_REQUIRE=all                                  # no test may skip

and every skip of a test in a required category (by its marker, see ``pyproject.toml``) becomes a
failure that keeps the skip's reason (drgn's vmtest does the same with its force switch).
``.ci/run`` sets ``all``.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

REQUIRE_ENV = "VFIOBENCH_TEST_REQUIRE"

#: Category names accepted in the switch -> the markers that put a test in that category.
CATEGORIES: dict[str, frozenset[str]] = {
    "root": frozenset({"root"}),
    "bpf": frozenset({"bpf"}),
    "lab": frozenset({"lab"}),
    "qemu": frozenset({"qemubuild"}),
    "browser": frozenset({"browser"}),
    "notebook": frozenset({"notebook"}),
    "prometheus": frozenset({"prometheus"}),
}


def required_categories(value: str | None = None) -> frozenset[str]:
    """The categories named by the switch (``all`` stands for every test).

    Raises:
        pytest.UsageError: an unknown category (so a typo cannot disable the switch).
    """
    raw = os.environ.get(REQUIRE_ENV, "") if value is None else value
    names = frozenset(n.strip() for n in raw.split(",") if n.strip())
    unknown = sorted(names - set(CATEGORIES) - {"all"})
    if unknown:
        raise pytest.UsageError(
            f"{REQUIRE_ENV}: unknown {', '.join(unknown)} (use all or {', '.join(CATEGORIES)})"
        )
    return names


def forced(markers: set[str], required: frozenset[str]) -> bool:
    """Whether a test with ``markers`` may not skip under ``required``."""
    if "all" in required:
        return True
    return any(markers & CATEGORIES[name] for name in required)


def pytest_configure(config: pytest.Config) -> None:
    required = required_categories()
    if required:
        config.stash[_REQUIRED] = required


def pytest_report_header(config: pytest.Config) -> str | None:
    required = config.stash.get(_REQUIRED, frozenset())
    if required:
        return f"{REQUIRE_ENV}={','.join(sorted(required))}: skips in these categories fail"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    required = item.config.stash.get(_REQUIRED, frozenset())
    if not required or not report.skipped or hasattr(report, "wasxfail"):
        return
    if not forced({m.name for m in item.iter_markers()}, required):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"{REQUIRE_ENV}={','.join(sorted(required))} forbids this skip: {reason}"


_REQUIRED = pytest.StashKey[frozenset[str]]()
