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


def test_release_recipes() -> None:
    """Each release is its own cached image; backports adds its suite and is preferred by apt."""
    from vfiobench.errors import LabError
    from vfiobench.lab.releases import RELEASES

    recipes = {name: Recipe.default(name) for name in RELEASES}
    assert len({r.digest() for r in recipes.values()}) == len(RELEASES)
    assert recipes["bookworm"].digest() == Recipe.default().digest()
    bpo = recipes["trixie-backports"]
    assert bpo.suite == "trixie"
    assert "deb http://deb.debian.org/debian trixie-backports main" in bpo.sources_list()
    assert "backports" not in recipes["trixie"].sources_list()
    assert "initramfs-tools" in bpo.packages and bpo.python == "3.13"
    try:
        Recipe.default("buster")
    except LabError as e:
        assert "unknown lab release 'buster'" in e.message and "trixie-backports" in e.hint
    else:
        raise AssertionError("an unknown release was accepted")


def test_apt_missing_package_is_read_from_apt_itself() -> None:
    """The parser reads what this machine's apt prints for a package the archive lacks."""
    import subprocess

    from vfiobench.lab.image import apt_missing_package

    out = subprocess.run(
        ["apt-get", "install", "-s", "vfiobench-no-such-package"], capture_output=True, text=True, check=False
    )
    assert out.returncode != 0
    assert apt_missing_package((out.stdout + out.stderr).splitlines()) == "vfiobench-no-such-package"
    assert apt_missing_package(["E: Package 'qemu-kvm' has no installation candidate"]) == "qemu-kvm"
    assert apt_missing_package(["Reading package lists... Done"]) is None
