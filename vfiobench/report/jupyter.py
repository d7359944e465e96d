"""JupyterLab on the report notebooks with the ``vfiobench`` kernel (``make notebook``).

``python -m vfiobench.report.jupyter`` registers the ``vfiobench`` kernelspec for this interpreter
when it is missing (:mod:`ipykernel.kernelspec`), picks a free port (8888 when it is free), prints
the URL to open (with its token) and replaces itself with JupyterLab serving ``notebooks/``. As
root it passes ``--allow-root`` (JupyterLab refuses root otherwise, and the lab machines run as
root). The notebooks' relative paths (``data/sample``) resolve from the repository either way
(:func:`vfiobench.report.pages.resolve_path`).

Example:
    $ python -m vfiobench.report.jupyter --no-browser
    JupyterLab: open http://localhost:8888/lab?token=3f0c...
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from vfiobench.report.execute import NOTEBOOK_DIRS
from vfiobench.report.kernel import KERNEL_NAME, find_kernel

#: The port JupyterLab is started on when it is free.
DEFAULT_PORT = 8888


def free_port(preferred: int = DEFAULT_PORT) -> int:
    """``preferred`` when nothing listens on it on localhost, else a port the kernel picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free TCP port on 127.0.0.1")


def ensure_kernelspec() -> str:
    """Register the ``vfiobench`` kernelspec for this interpreter unless one already runs it.

    Returns:
        The kernelspec's name (:data:`~vfiobench.report.kernel.KERNEL_NAME`).
    """
    if find_kernel() is None:
        from ipykernel.kernelspec import install

        install(kernel_name=KERNEL_NAME, display_name="vfiobench", prefix=sys.prefix)
    return KERNEL_NAME


def lab_argv(
    root_dir: Path, port: int, token: str, *, open_browser: bool = True, as_root: bool | None = None
) -> list[str]:
    """The JupyterLab command line: this interpreter, ``root_dir`` served, one port, a fixed token."""
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.ip=localhost",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
    ]
    if not open_browser:
        argv.append("--no-browser")
    if as_root if as_root is not None else os.geteuid() == 0:
        argv.append("--allow-root")
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Start JupyterLab on the notebooks (never returns unless it cannot start)."""
    parser = argparse.ArgumentParser(
        prog="python -m vfiobench.report.jupyter", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, default=None, help=f"port (default: {DEFAULT_PORT} if free)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument(
        "--notebooks",
        type=Path,
        default=None,
        help="directory to serve (default: the repository's notebooks/)",
    )
    args = parser.parse_args(argv)
    root_dir = args.notebooks or next((d for d in NOTEBOOK_DIRS if d.is_dir()), Path.cwd())
    ensure_kernelspec()
    port = args.port or free_port()
    token = secrets.token_hex(24)
    print(f"JupyterLab: open http://localhost:{port}/lab?token={token}", flush=True)
    print(f"(serving {root_dir}; Ctrl-C twice stops it)", flush=True)
    cmd = lab_argv(root_dir, port, token, open_browser=not args.no_browser)
    os.execv(cmd[0], cmd)
    return 1  # pragma: no cover (execv does not return)


if __name__ == "__main__":
    sys.exit(main())
