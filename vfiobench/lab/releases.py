"""The Debian releases the lab's L1 can be built from: which suite, which kernel and QEMU, which Python.

=====================  ==========  ==============  ===========  ============================
release                suite       kernel (L1)     QEMU (L2)    L1 Python, BCC
=====================  ==========  ==============  ===========  ============================
``bookworm``           bookworm    6.1             7.2          3.11, BCC 0.26 (LLVM 14)
``trixie``             trixie      6.12            10.0         3.13, BCC 0.31 (LLVM 19)
``trixie-backports``   trixie      7.3 (bpo)       11.1 (bpo)   3.13, BCC 0.31 (LLVM 19)
=====================  ==========  ==============  ===========  ============================

``trixie-backports`` is trixie with the kernel and QEMU taken from backports: apt installs with
``-t trixie-backports`` (so QEMU's ``-common``/``-data`` and SeaBIOS come from backports too) and
every other package from trixie. The exact versions land in the image's ``image.json`` and in
every run's ``run.json`` (labels ``lab_release`` and ``lab_packages``).

The QEMU *source* the project builds for a release (:mod:`vfiobench.qemu.sourcepick`) comes from
its ``qemu_sources``, in order: the first suite whose listed source the mirror serves. Every
release builds its own suite's source, except that the project's mirror lists trixie-backports'
QEMU 11.1 source without serving it (404); trixie-backports then builds the newest source sid
lists and the mirror serves (QEMU 10.2), and says so in the build's ``build.json`` and its runs'
``qemu_source`` label. Binary packages always come from the release's own suites.

Differences the lab handles per release:

* Trixie's kernel depends on ``dracut | initramfs-tools``; in a minbase root dracut's hook fails
  (no ``poweroff``) while apt still exits 0, leaving a bad initrd, so ``initramfs-tools`` is named.
* Neither release has ``python3-pyarrow``: PyPI's wheel for L1's Python is unpacked into the image
  (the newest one accepting the release's numpy).
"""

from __future__ import annotations

from dataclasses import dataclass

from vfiobench.errors import LabError


@dataclass(frozen=True)
class Release:
    """One Debian release of the lab's L1.

    Attributes:
        name: the name used on the command line and in run labels.
        suite: the Debian suite debootstrap installs.
        backports: the suite whose packages apt prefers (``-t``), "" for none.
        python: L1's Python version (``X.Y``: wheels are fetched for it).
        wheels: PyPI wheels unpacked into L1's ``dist-packages``.
        extra_packages: packages installed beyond the lab's common list.
        qemu_sources: the suites whose QEMU source package a QEMU build may use, in order of
            preference (empty: the release's own, :attr:`backports` or else :attr:`suite`); a
            suite also covers its ``-updates`` and ``-security`` pockets where the release has
            them, and suites the release's apt sources lack get a ``deb-src`` entry of their own
            in the build chroot (:mod:`vfiobench.qemu.buildroot`).
    """

    name: str
    suite: str
    backports: str = ""
    python: str = "3.11"
    wheels: tuple[str, ...] = ()
    extra_packages: tuple[str, ...] = ()
    qemu_sources: tuple[str, ...] = ()

    @property
    def qemu_source_suites(self) -> tuple[str, ...]:
        """:attr:`qemu_sources`, or the release's own suite (``trixie-backports``, ``trixie``)."""
        return self.qemu_sources or (self.backports or self.suite,)


RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        # pyarrow 21.0.0 is the last wheel that accepts bookworm's numpy 1.24
        Release("bookworm", "bookworm", python="3.11", wheels=("pyarrow==21.0.0",)),
        Release(
            "trixie",
            "trixie",
            python="3.13",
            wheels=("pyarrow==21.0.0",),
            extra_packages=("initramfs-tools",),
        ),
        Release(
            "trixie-backports",
            "trixie",
            backports="trixie-backports",
            python="3.13",
            wheels=("pyarrow==21.0.0",),
            extra_packages=("initramfs-tools",),
            # the mirror lists backports' QEMU 11.1 source but answers 404 for it: fall back to
            # the newest source sid lists and the mirror serves (10.2.2), never silently
            qemu_sources=("trixie-backports", "sid"),
        ),
    )
}

#: The release the lab uses unless told otherwise.
DEFAULT_RELEASE = "bookworm"


def get_release(name: str | None) -> Release:
    """The release called ``name`` (None: :data:`DEFAULT_RELEASE`).

    Raises:
        LabError: no such release (the message lists the known ones).
    """
    key = name or DEFAULT_RELEASE
    try:
        return RELEASES[key]
    except KeyError:
        raise LabError(
            f"unknown lab release {key!r}", f"use one of {', '.join(RELEASES)} (e.g. --release trixie)"
        ) from None
