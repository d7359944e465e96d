"""The L1 image recipe and the build's mount bookkeeping (no build)."""

from __future__ import annotations

from pathlib import Path

from vfiobench.lab.image import Recipe, mounts_below, read_init_script


def test_recipe_hash_tracks_the_recipe_and_the_init_script() -> None:
    r = Recipe.default()
    assert r.digest() == Recipe.default().digest()
    assert Recipe(packages=(*r.packages, "strace"), init_script=r.init_script).digest() != r.digest()
    assert Recipe(init_script=r.init_script + "\n# changed").digest() != r.digest()
    init = read_init_script()
    assert "sysrq-trigger" in init and "remount,ro" in init and "/share/job.sh" in init


def test_mounts_below_sees_proc(tmp_path: Path) -> None:
    assert mounts_below(tmp_path) == []
    assert Path("/proc") in mounts_below(Path("/proc"))
