"""Debian's side of a QEMU build: deb-src entries, build dependencies, ``apt-get source qemu``.

Also the subprocess helpers the build uses (:func:`run_logged`, :func:`capture`) and
:class:`Shell`, where build commands run: this machine (:data:`HOST`) or a release's chroot
(:mod:`vfiobench.qemu.buildroot`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from vfiobench.errors import QemuError

#: Build dependencies for :data:`CONFIGURE_ARGS` (a subset of ``apt-get build-dep qemu``).
BUILD_DEPS: tuple[str, ...] = (
    "dpkg-dev",
    "patch",
    "gcc",
    "make",
    "pkgconf",
    "python3",
    "ninja-build",
    "meson",
    "libglib2.0-dev",
    "libpixman-1-dev",
    "zlib1g-dev",
    "libfdt-dev",
    "libslirp-dev",
)


DEB_SRC_FILE = Path("/etc/apt/sources.list.d/vfiobench-deb-src.sources")


Progress = Callable[[str], None]


def run_logged(
    cmd: Sequence[str],
    log: IO[str],
    *,
    cwd: Path | None = None,
    what: str,
    on_line: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run ``cmd``, copying its output into ``log`` (and to ``on_line``); raise on failure."""
    log.write(f"\n$ {' '.join(cmd)}\n")
    log.flush()
    tail: list[str] = []
    try:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
        )
    except FileNotFoundError:
        raise QemuError(f"cannot {what}: {cmd[0]} not found", "run `make system` as root") from None
    assert proc.stdout is not None
    with proc:
        try:
            for line in proc.stdout:
                log.write(line)
                tail = [*tail[-11:], line.rstrip()]
                if on_line is not None:
                    on_line(line.rstrip("\n"))
        except BaseException:
            proc.kill()
            raise
    log.flush()
    if proc.returncode != 0:
        last = next((t for t in reversed(tail) if t.strip()), "")
        raise QemuError(
            f"cannot {what}: {cmd[0]} exited with {proc.returncode}: {last[:200]}",
            f"see {log.name}",
        )


def capture(cmd: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` and capture its output (text); raise :class:`QemuError` if it is missing."""
    try:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise QemuError(f"{cmd[0]} not found", "this needs Debian's apt/dpkg tools") from None


#: The environment of commands run in a chroot: nothing of the caller's (a host virtualenv's
#: ``PYTHONPATH`` or ``VIRTUAL_ENV`` would leak into QEMU's configure-time Python).
CHROOT_ENV: tuple[str, ...] = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "LC_ALL=C.UTF-8",
    "DEBIAN_FRONTEND=noninteractive",
)


@dataclass(frozen=True)
class Shell:
    """Where the build's commands run: this machine, or a chroot that sees one host directory.

    Attributes:
        chroot: The chroot's root directory, or None for this machine.
        tree: The host directory the chroot sees at ``mount_point`` (bind-mounted by
            :meth:`vfiobench.qemu.buildroot.BuildRoot.session`); every path handed to a command
            in the chroot lies below it.
        mount_point: Where ``tree`` appears inside the chroot.
        apt_args: Extra ``apt-get`` arguments (``-t trixie-backports``).
        archive: What apt fetches from, for messages (``Debian trixie (http://...)``).
    """

    chroot: Path | None = None
    tree: Path | None = None
    mount_point: str = "/vfiobench"
    apt_args: tuple[str, ...] = ()
    archive: str = "this machine's apt sources"

    def path(self, path: Path) -> str:
        """``path`` as the commands see it (unchanged on this machine).

        Raises:
            QemuError: A chroot command is handed a path neither below its tree nor in the chroot.
        """
        if self.chroot is None:
            return str(path)
        if self.tree is not None and path.is_relative_to(self.tree):
            rel = path.relative_to(self.tree)
            return f"{self.mount_point}/{rel}" if rel.parts else self.mount_point
        if path.is_relative_to(self.chroot):
            return "/" + str(path.relative_to(self.chroot))
        raise QemuError(f"{path} is neither below {self.tree} nor in the chroot {self.chroot}")

    def argv(self, cmd: Sequence[str], cwd: Path | None = None) -> list[str]:
        """The command line that runs ``cmd`` in ``cwd`` here or in the chroot (clean environment)."""
        if self.chroot is None:
            return list(cmd)
        chdir = [f"--chdir={self.path(cwd)}"] if cwd is not None else []
        return ["chroot", str(self.chroot), "/usr/bin/env", "-i", *chdir, *CHROOT_ENV, *cmd]

    def run(
        self,
        cmd: Sequence[str],
        log: IO[str],
        *,
        cwd: Path | None = None,
        what: str,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        """:func:`run_logged` here or in the chroot."""
        if self.chroot is None:
            run_logged(cmd, log, cwd=cwd, what=what, on_line=on_line)
        else:
            run_logged(self.argv(cmd, cwd), log, what=what, on_line=on_line)

    def capture(self, cmd: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """:func:`capture` here or in the chroot."""
        return capture(self.argv(cmd), timeout)


#: Commands run on this machine, with its own apt sources.
HOST = Shell()


def safe_version(version: str) -> str:
    """A version string usable in a directory name (``1:7.2+dfsg-7`` → ``1_7.2+dfsg-7``)."""
    return re.sub(r"[^A-Za-z0-9.+~-]", "_", version)


def deb_src_entries(sources: dict[str, str]) -> str:
    """deb-src stanzas mirroring the configured Debian ``deb`` entries.

    Args:
        sources: Map of apt source file name to its content (``debian.sources`` in deb822 form,
            ``sources.list`` in one-line form).

    Returns:
        A deb822 ``.sources`` text with one ``Types: deb-src`` stanza per Debian ``deb`` stanza or
        line (same URIs, suites, components, keyring), or ``""`` when there is none.
    """
    stanzas: list[str] = []
    for name, text in sorted(sources.items()):
        if name.endswith(".sources"):
            for block in re.split(r"\n\s*\n", text):
                fields = _deb822(block)
                if "deb" not in fields.get("Types", "").split():
                    continue
                if fields.get("Enabled", "yes").lower() == "no":
                    continue
                if "debian" not in fields.get("URIs", ""):
                    continue
                keep = ["URIs", "Suites", "Components", "Signed-By"]
                lines = ["Types: deb-src"] + [f"{k}: {fields[k]}" for k in keep if k in fields]
                stanzas.append("\n".join(lines))
        else:
            for raw in text.splitlines():
                m = re.match(r"^\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+?)\s*$", raw)
                if not m or "debian" not in m.group(2):
                    continue
                opts = m.group(1) or ""
                signed = re.search(r"signed-by=(\S+?)[\s\]]", opts)
                lines = [
                    "Types: deb-src",
                    f"URIs: {m.group(2)}",
                    f"Suites: {m.group(3)}",
                    f"Components: {m.group(4)}",
                ]
                if signed:
                    lines.append(f"Signed-By: {signed.group(1)}")
                stanzas.append("\n".join(lines))
    unique = list(dict.fromkeys(stanzas))
    if not unique:
        return ""
    head = "# Added by vfiobench: source packages for `apt-get source qemu` (mirrors the deb entries).\n"
    return head + "\n\n".join(unique) + "\n"


def _deb822(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = ""
    for line in block.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0] in " \t" and key:
            fields[key] += " " + line.strip()
            continue
        k, _, v = line.partition(":")
        key = k.strip()
        fields[key] = v.strip()
    return fields


def _apt_sources() -> dict[str, str]:
    out: dict[str, str] = {}
    main = Path("/etc/apt/sources.list")
    if main.is_file():
        out[main.name] = main.read_text()
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        for f in sorted(d.iterdir()):
            if f.suffix in (".list", ".sources") and f != DEB_SRC_FILE:
                out[f.name] = f.read_text()
    return out


def has_qemu_source() -> bool:
    """Whether apt knows the ``qemu`` source package (a deb-src entry is configured)."""
    r = capture(["apt-cache", "showsrc", "--only-source", "qemu"])
    return r.returncode == 0 and "Package: qemu" in r.stdout


def ensure_deb_src(progress: Progress | None = None) -> None:
    """Make ``apt-get source qemu`` possible: add deb-src entries (root only) when missing.

    Raises:
        QemuError: No deb-src and not root, or nothing to mirror.
    """
    if has_qemu_source():
        return
    if os.geteuid() != 0:
        raise QemuError(
            "apt has no deb-src entry for qemu, so `apt-get source qemu` cannot work",
            "run `make system` (or this command) as root once, or add a deb-src line by hand",
        )
    text = deb_src_entries(_apt_sources())
    if not text:
        raise QemuError("no Debian deb entry in /etc/apt to mirror as deb-src", "add a deb-src line")
    if progress:
        progress(f"adding deb-src entries in {DEB_SRC_FILE} and running apt-get update")
    DEB_SRC_FILE.write_text(text)
    r = capture(["apt-get", "update", "-qq", "-o", "DPkg::Lock::Timeout=300"], timeout=600)
    if r.returncode != 0 or not has_qemu_source():
        raise QemuError(f"apt-get update did not make qemu's source available: {r.stderr.strip()[:200]}")


def missing_build_deps(packages: Sequence[str] = BUILD_DEPS) -> list[str]:
    """The packages of ``packages`` that dpkg does not list as installed."""
    r = capture(["dpkg-query", "-W", "-f=${Package} ${Status}\n", *packages])
    ok = {
        line.split()[0].split(":")[0]
        for line in r.stdout.splitlines()
        if line.endswith("install ok installed")
    }
    return [p for p in packages if p not in ok]


def ensure_build_deps(log: IO[str], progress: Progress | None = None) -> None:
    """Install missing :data:`BUILD_DEPS` (root), or fail naming them."""
    missing = missing_build_deps()
    if not missing:
        return
    if os.geteuid() != 0:
        raise QemuError(
            f"QEMU build dependencies missing: {' '.join(missing)}",
            "run `make system` as root, or apt-get install them",
        )
    if progress:
        progress(f"installing build dependencies: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_logged(
        [
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "-o",
            "DPkg::Lock::Timeout=300",
            *missing,
        ],
        log,
        what="install QEMU build dependencies",
        env=env,
    )


_NO_SOURCE_RE = re.compile(r"Unable to find a source package for (\S+)")


_NOT_FOUND_RE = re.compile(r"Failed to fetch \S*/([^/\s]+)\s+(\d{3}\s+[^\[]*?)\s*(?:\[|$)")


def source_version(root: Path, shell: Shell = HOST, package: str = "qemu") -> str:
    """The Debian source version ``apt-get source qemu`` fetches (``7.2+dfsg-7+deb12u18``).

    Without apt's answer (offline, no deb-src, not root for a chroot), falls back to the only
    source tree already in the cache.

    Args:
        root: The cache directory holding ``src-<version>`` trees.
        shell: Where apt runs (this machine, or a release's chroot with its own sources).
        package: The source package (``qemu``; another name only in tests).

    Raises:
        QemuError: The archive has no such source package (naming it), or apt cannot tell and the
            cache does not hold exactly one source tree.
    """
    cmd = ["apt-get", "source", "--print-uris", "-qq", *shell.apt_args, package]
    r = shell.capture(cmd) if shell.chroot is None or os.geteuid() == 0 else None
    if r is not None:
        m = re.search(rf"\s{re.escape(package)}_([^\s/]+)\.dsc\s", r.stdout)
        if r.returncode == 0 and m:
            return m.group(1)
        missing = _NO_SOURCE_RE.search(r.stderr)
        if missing:
            raise QemuError(
                f"source package {missing.group(1)} is not in {shell.archive}",
                "check the mirror, or build another release (--release)",
            )
    trees = sorted(root.glob("src-*/debian/changelog"))
    if len(trees) == 1:
        return trees[0].parent.parent.name.removeprefix("src-")
    said = r.stderr if r is not None else "not root: cannot ask apt in the chroot"
    detail = (said.strip().splitlines() or ["no output"])[-1]
    raise QemuError(
        f"cannot tell which qemu source apt would fetch: {detail[:200]}",
        "run as root once so vfiobench adds a deb-src entry, or `make system`",
    )


def fetch_source(
    version: str,
    log: IO[str],
    root: Path,
    progress: Progress | None = None,
    shell: Shell = HOST,
    package: str = "qemu",
    request: str | None = None,
) -> Path:
    """``apt-get source`` + ``dpkg-source -x`` into ``<cache>/src-<version>/`` (once).

    Args:
        version: The source version (:func:`source_version`).
        log: Where commands' output goes.
        root: The cache directory (``downloads/`` and the source trees go there).
        progress: Called with one-line progress messages.
        shell: Where apt and dpkg-source run; ``root`` must be below its tree for a chroot.
        package: The source package (``qemu``; another name only in tests).
        request: What ``apt-get source`` is asked for, e.g. ``qemu=1:10.2.2+ds-1`` (the exact
            version :mod:`vfiobench.qemu.sourcepick` chose, whichever suite lists it); None asks
            for ``package`` with the shell's ``apt_args``.

    Returns:
        The pristine source tree (Debian's patches applied, ours not).

    Raises:
        QemuError: The archive lists the version but does not serve its files (naming the package,
            version and file), or a command failed.
    """
    base = root
    dest = base / f"src-{safe_version(version)}"
    if (dest / "debian" / "changelog").is_file() and (dest / "configure").is_file():
        return dest
    base.mkdir(parents=True, exist_ok=True)
    downloads = base / "downloads"
    downloads.mkdir(exist_ok=True)
    if progress:
        progress(f"fetching Debian qemu {version} source (apt-get source)")
    dsc = downloads / f"{package}_{version}.dsc"
    if not dsc.is_file():
        lines: list[str] = []
        try:
            shell.run(
                [
                    "apt-get",
                    "source",
                    "--download-only",
                    "-qq",
                    *([request] if request else [*shell.apt_args, package]),
                ],
                log,
                cwd=downloads,
                what=f"apt-get source {package}",
                on_line=lines.append,
            )
        except QemuError:
            gone = next((m for line in lines if (m := _NOT_FOUND_RE.search(line))), None)
            if gone is None:
                raise
            raise QemuError(
                f"source package {package} {version} is listed in {shell.archive} but not served: "
                f"{urllib.parse.unquote(gone.group(1))}: {' '.join(gone.group(2).split())}",
                "build another release (--release), or use a mirror that has the source",
            ) from None
    if not dsc.is_file():
        raise QemuError(f"apt-get source did not produce {dsc.name}", "apt's source version changed; retry")
    tmp = Path(tempfile.mkdtemp(prefix="src-", dir=base))
    try:
        shell.run(
            ["dpkg-source", "--no-check", "-x", shell.path(dsc), shell.path(tmp / "src")],
            log,
            what=f"extract the {package} source (dpkg-source -x)",
        )
        if dest.exists():
            shutil.rmtree(dest)
        (tmp / "src").rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
