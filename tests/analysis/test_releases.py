"""The cross-release view: each variant's level per lab release, from one value per run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vfiobench.analysis.ab import metric_samples, per_run_values
from vfiobench.analysis.compare import make_comparison
from vfiobench.analysis.inference import run_level
from vfiobench.analysis.releases import df_cross_release, releases_of
from vfiobench.sample import generate
from vfiobench.store import load_runs


def _label(run_dir: Path, release: str) -> None:
    path = run_dir / "run.json"
    meta = json.loads(path.read_text())
    meta["labels"]["release"] = release
    meta["run_id"] = f"{release}-{meta['run_id']}"
    path.write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def two_releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic sample twice: 6 repetitions on bookworm, 3 on trixie-backports (seed apart)."""
    root = tmp_path_factory.mktemp("releases")
    for release, reps, seed in (("bookworm", 6, 1), ("trixie-backports", 3, 2)):
        for run_dir in generate(root / release, cycles=40, repetitions=reps, seed=seed):
            _label(run_dir, release)
    return root


def test_levels_per_release_never_pool_and_need_six_runs(two_releases: Path) -> None:
    cmp = make_comparison(load_runs(two_releases), baseline="stock")
    assert releases_of(cmp) == ["bookworm", "trixie-backports"]
    df = df_cross_release(cmp, "us_per_irq")
    assert set(df["release"]) == {"bookworm", "trixie-backports"}
    for (release, variant), row in df.set_index(["release", "variant"]).iterrows():
        runs = cmp.runs.filter(variant=variant)
        mine = [r for r in runs if r.meta.labels["release"] == release and r.meta.kind == "probed"]
        assert row["runs"] == len(mine) == (6 if release == "bookworm" else 3)
        # the centre is the geometric mean of the runs' own mean µs per interrupt, those runs only
        from vfiobench.store import RunSet

        samples, _ = metric_samples(RunSet(mine), "us_per_irq")
        per_run = per_run_values(samples, str(variant), "mean")
        assert row["center"] == pytest.approx(math.exp(np.log(per_run).mean()))
        if release == "bookworm":
            half = stats.t.ppf(0.975, 5) * np.log(per_run).std(ddof=1) / math.sqrt(6)
            assert row["ci_low"] == pytest.approx(row["center"] * math.exp(-half))
            assert row["ci_high"] == pytest.approx(row["center"] * math.exp(half))
        else:
            assert pd.isna(row["ci_low"]) and pd.isna(row["ci_high"])  # 3 runs: no interval


def test_runs_without_a_release_give_no_view(tmp_path: Path) -> None:
    generate(tmp_path, cycles=20, repetitions=2)
    cmp = make_comparison(load_runs(tmp_path), baseline="stock")
    assert releases_of(cmp) == [] and df_cross_release(cmp).empty


def test_run_level_interval_covers_the_geometric_mean_about_95_percent() -> None:
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(2000):
        r = run_level(np.exp(rng.normal(np.log(5.0), 0.3, 8)))
        assert r.ci_low is not None and r.ci_high is not None
        hits += r.ci_low <= 5.0 <= r.ci_high
    assert 0.93 <= hits / 2000 <= 0.97
    assert run_level([1.0, 2.0, 3.0]).ci_low is None
    assert run_level([0.0, 1.0, 2.0]).geometric is False  # a zero: arithmetic mean


def test_page_view_lays_releases_side_by_side(two_releases: Path) -> None:
    from vfiobench.report.pages.releases import cross_release_html, cross_release_view

    cmp = make_comparison(load_runs(two_releases), baseline="stock")
    view = cross_release_view(cmp, "us_per_irq")
    assert list(view.columns) == ["cell", "variant", "bookworm", "trixie-backports"]
    assert all(s.endswith("(6 runs)") and " [" in s for s in view["bookworm"])
    assert all(s.endswith("(3 runs: too few for an interval)") for s in view["trixie-backports"])
    page = cross_release_html(cmp)
    assert page.count("<table") == 2 and "bookworm, trixie-backports" in page


def test_releases_rank_by_their_l1_kernel_not_their_name(two_releases: Path) -> None:
    """Oldest first by kernel version compared as numbers (6.9 < 6.12 < 7.3), names only for ties."""
    from vfiobench.analysis.compare import release_ranks

    runs = list(load_runs(two_releases))
    kernels = {"bookworm": "6.12.1-amd64", "trixie-backports": "6.9.3-amd64"}
    for r in runs:
        r.meta.host.kernel_release = kernels[r.meta.labels["release"]]
    assert release_ranks(runs) == {"trixie-backports": 0, "bookworm": 1}
    for r in runs:
        r.meta.host.kernel_release = "7.3.4+deb13-amd64"
    assert release_ranks(runs) == {"bookworm": 0, "trixie-backports": 1}
    assert release_ranks([]) == {}
