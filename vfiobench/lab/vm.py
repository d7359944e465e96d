"""Boot the L1 guest: single-threaded TCG, q35, an emulated VT-d, an ivshmem-doorbell device.

:class:`L1VM` is a context manager that owns every process of a boot: the ivshmem server (a thread
of this process) and the L1 QEMU. Leaving the ``with`` block, by a return, an exception or Ctrl-C,
kills the QEMU (its own process group) and closes the server. :meth:`L1VM.wait` waits for the guest
to power off and kills it with a :class:`~vfiobench.errors.LabError` after the timeout.

The command line is the one verified in LAB-NOTES.md, with two changes: the console goes to a log
file (kept for every boot) instead of stdio, and the root disk is opened with ``snapshot=on`` so the
cached image is never written (boots may run side by side; no journal replay ever).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

from vfiobench.errors import LabError
from vfiobench.lab.image import Image
from vfiobench.lab.ivshmem import IvshmemServer

#: Console markers printed by init-lab.sh.
MARK_INIT = "vfiobench-lab: init up"
MARK_JOB_START = "vfiobench-lab: job start"
MARK_JOB_DONE = "vfiobench-lab: job done"

KERNEL_APPEND = "root=/dev/vda rw init=/sbin/init-lab console=ttyS0 intel_iommu=on iommu=pt panic=-1"


@dataclass
class VmConfig:
    """How to run L1.

    Attributes:
        qemu: The L0 QEMU binary that runs L1.
        memory: Guest memory (``-m``).
        smp: Guest CPUs.
        vectors: MSI-X vectors of the ivshmem-doorbell device.
        timeout_s: Kill the guest after this many seconds without power-off.
        boot_timeout_s: Kill the guest when its job has not started after this many seconds: L1
            reaches its job in 12-27 s, but about one boot in a hundred hangs early in the kernel
            under TCG (seen at 0.86 s, after the HugeTLB lines), and waiting for ``timeout_s``
            (10+ minutes for a batch) wasted the time of a whole batch.
        extra_args: Appended to the QEMU command line.
    """

    qemu: str = "qemu-system-x86_64"
    memory: str = "4G"
    smp: int = 2
    vectors: int = 4
    timeout_s: float = 900.0
    boot_timeout_s: float = 180.0
    extra_args: list[str] = field(default_factory=list)


def l1_cmdline(
    image: Image, share: Path, ivshmem_sock: Path, console: Path | None, cfg: VmConfig
) -> list[str]:
    """The L1 QEMU command line (``console=None``: the console on this terminal, for a shell)."""
    cmd = [
        cfg.qemu,
        "-accel",
        "tcg,thread=single",  # MTTCG hung 1 boot in 4 (LAB-NOTES §4) and is slower on 2 cores
        "-cpu",
        "max",
        "-machine",
        "q35,kernel-irqchip=split",
        "-m",
        cfg.memory,
        "-smp",
        str(cfg.smp),
        "-device",
        "intel-iommu,intremap=on,caching-mode=on",
        "-no-reboot",
        "-display",
        "none",
        "-vga",
        "none",
        "-nic",
        "none",
        "-kernel",
        str(image.kernel),
        "-initrd",
        str(image.initrd),
        "-append",
        KERNEL_APPEND,
        "-drive",
        f"file={image.disk},if=virtio,format=raw,snapshot=on",
        "-virtfs",
        f"local,path={share},mount_tag=share,security_model=none",
        "-chardev",
        f"socket,path={ivshmem_sock},id=ivs",
        "-device",
        f"ivshmem-doorbell,chardev=ivs,vectors={cfg.vectors}",
    ]
    if console is None:
        cmd += ["-chardev", "stdio,id=con,mux=on,signal=off", "-serial", "chardev:con", "-mon", "chardev=con"]
    else:
        cmd += ["-serial", f"file:{console}", "-monitor", "none"]
    return cmd + list(cfg.extra_args)


@dataclass
class BootTimes:
    """Host-side wall times of one boot, in seconds after the QEMU start."""

    init_s: float | None = None
    job_start_s: float | None = None
    job_done_s: float | None = None
    exit_s: float | None = None


class L1VM:
    """One L1 boot; a context manager.

    Args:
        image: The built image (:func:`vfiobench.lab.image.build_image`).
        share: Host directory exported over 9p as ``/share`` (holds ``job.sh``).
        console_log: Where the guest console goes (kept after the boot).
        config: QEMU settings and the timeout.
        interactive: Console on this terminal (``vfiobench lab shell``), also logged.

    Example:
        >>> with L1VM(img, share, share / "console.log") as vm:     # doctest: +SKIP
        ...     rc = vm.wait()
    """

    def __init__(
        self,
        image: Image,
        share: Path,
        console_log: Path,
        config: VmConfig | None = None,
        *,
        interactive: bool = False,
    ) -> None:
        self.image = image
        self.share = Path(share)
        self.console_log = Path(console_log)
        self.config = config or VmConfig()
        self.interactive = interactive
        self.proc: subprocess.Popen[bytes] | None = None
        self.ivshmem: IvshmemServer | None = None
        self.cmdline: list[str] = []
        self.times = BootTimes()
        self._tmp: Path | None = None
        self._stderr: IO[bytes] | None = None
        self._t0 = 0.0
        self._console_pos = 0
        self._console_tail = ""

    def __enter__(self) -> Self:
        if shutil.which(self.config.qemu) is None:
            raise LabError(f"{self.config.qemu}: not found", "apt-get install qemu-system-x86")
        try:
            self._tmp = Path(tempfile.mkdtemp(prefix="vfiobench-l1-"))
            sock = self._tmp / "ivshmem.sock"
            self.ivshmem = IvshmemServer(sock, vectors=self.config.vectors).start()
            console = None if self.interactive else self.console_log
            self.cmdline = l1_cmdline(self.image, self.share, sock, console, self.config)
            self.console_log.parent.mkdir(parents=True, exist_ok=True)
            if self.interactive:
                # log the interactive console too (QEMU's chardev logfile)
                i = self.cmdline.index("stdio,id=con,mux=on,signal=off")
                self.cmdline[i] += f",logfile={self.console_log}"
                self._t0 = time.monotonic()
                self.proc = subprocess.Popen(self.cmdline)
            else:
                self.console_log.write_bytes(b"")
                self._stderr = open(self.console_log.with_suffix(".qemu-stderr"), "wb")
                self._t0 = time.monotonic()
                self.proc = subprocess.Popen(
                    self.cmdline,
                    stdin=subprocess.DEVNULL,
                    stdout=self._stderr,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches us, and we end QEMU ourselves
                )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def elapsed_s(self) -> float:
        """Seconds since QEMU started."""
        return time.monotonic() - self._t0

    def _scan_console(self) -> None:
        if self.interactive or not self.console_log.exists():
            return
        with open(self.console_log, "rb") as f:
            f.seek(self._console_pos)
            chunk = f.read()
        if not chunk:
            return
        self._console_pos += len(chunk)
        text = self._console_tail + chunk.decode("utf-8", "replace")
        now = round(self.elapsed_s, 2)
        if self.times.init_s is None and MARK_INIT in text:
            self.times.init_s = now
        if self.times.job_start_s is None and MARK_JOB_START in text:
            self.times.job_start_s = now
        if self.times.job_done_s is None and MARK_JOB_DONE in text:
            self.times.job_done_s = now
        self._console_tail = text[-200:]

    def wait(self, timeout_s: float | None = None, on_poll: Callable[[], None] | None = None) -> int:
        """Wait for L1 to power off; returns QEMU's exit status.

        Args:
            timeout_s: Defaults to the config's timeout.
            on_poll: Called about every 0.5 s while waiting (e.g. to show the job's progress).

        Raises:
            LabError: the guest did not power off in time (it is killed), or the ivshmem server died.
        """
        assert self.proc is not None, "wait() outside the with block"
        limit = self.config.timeout_s if timeout_s is None else timeout_s
        while True:
            try:
                rc = self.proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            self._scan_console()
            if on_poll is not None:
                on_poll()
            if self.ivshmem is not None and self.ivshmem.error is not None:
                self.kill()
                raise LabError(f"the ivshmem server failed: {self.ivshmem.error}")
            boot_limit = min(limit, self.config.boot_timeout_s)
            if self.times.job_start_s is None and self.elapsed_s > boot_limit:
                self.kill()
                raise LabError(
                    f"L1 did not start its job within {boot_limit:.0f} s (a hung boot) and was killed; "
                    f"console ends: {self.console_tail()!r}",
                    f"re-run to retry (see {self.console_log})",
                )
            if self.elapsed_s > limit:
                self.kill()
                tail = self.console_tail()
                raise LabError(
                    f"L1 did not power off within {limit:.0f} s and was killed; console ends: {tail!r}",
                    f"see {self.console_log}",
                )
        self._scan_console()
        if on_poll is not None:
            on_poll()
        self.times.exit_s = round(self.elapsed_s, 2)
        return rc

    def console_tail(self, n: int = 3) -> str:
        """The last ``n`` non-empty console lines."""
        try:
            text = self.console_log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join([ln.strip() for ln in text.splitlines() if ln.strip()][-n:])

    def qemu_stderr(self) -> str:
        """What the L1 QEMU printed itself (errors, warnings)."""
        path = self.console_log.with_suffix(".qemu-stderr")
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """End the L1 QEMU now (SIGTERM to its process group, SIGKILL after 5 s)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                if self.interactive:
                    proc.send_signal(sig)
                else:
                    os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> None:
        """Kill QEMU if still running, stop the ivshmem server, remove the scratch directory."""
        self.kill()
        if self.ivshmem is not None:
            self.ivshmem.close()
            self.ivshmem = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
