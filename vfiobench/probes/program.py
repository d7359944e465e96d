"""The BPF program text and compiler flags for a set of probes (what ``--print-bpf`` shows).

BCC compiles one C text and registers maps and BPF functions only from that text (not from files it
``#include``s), so the program is the concatenation, unaltered, of ``common.bpf.c`` and each selected
probe's ``*.bpf.c`` file; the shared macros and event structs come in through ``#include`` of
``vfiobench.bpf.h``/``events.bpf.h`` found with ``-I``. Everything run-specific is a ``-D`` flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vfiobench.buckets import DEFAULT_SUB_BUCKET_BITS
from vfiobench.errors import ProbeError
from vfiobench.probes.catalog import DEFAULT_IRQ_NAME_PREFIX, HEADERS, ProbeSpec, bpf_dir

COMMON_SOURCE = "common.bpf.c"


@dataclass(frozen=True)
class Program:
    """A BPF program ready for ``BPF(text=..., cflags=...)``."""

    text: str
    cflags: tuple[str, ...]
    files: tuple[str, ...]

    def describe(self) -> str:
        """The program as printed by ``vfiobench record --print-bpf``: flags, headers, then the text."""
        d = bpf_dir()
        lines = [
            "// vfiobench BPF program",
            f"// cflags: {' '.join(self.cflags)}",
            f"// text = {' + '.join(self.files)} (concatenated, unaltered)",
        ]
        for header in HEADERS:
            lines += [f"// ---- {header} (#included) ----", (d / header).read_text(encoding="utf-8")]
        lines += ["// ---- program text ----", self.text]
        return "\n".join(lines)


def build_program(
    probes: list[ProbeSpec],
    *,
    pid: int = 0,
    pid_map: bool = False,
    ringbuf_pages: int = 1024,
    histogram: bool = False,
    sub_bucket_bits: int = DEFAULT_SUB_BUCKET_BITS,
    max_depth: int = 8,
    irq_name_prefix: str = DEFAULT_IRQ_NAME_PREFIX,
) -> Program:
    """Assemble the program for ``probes`` (in catalog order) with its ``-D`` flags.

    Args:
        probes: probes to include.
        pid: trace only this tgid (0: every process).
        pid_map: trace the tgids in the ``vb_pids`` map instead of ``pid`` (``-DVB_PID_MAP``: a
            tracer session adds and removes them, :mod:`vfiobench.probes.session`).
        ringbuf_pages: pages per ring buffer (rounded up to a power of two).
        histogram: aggregate durations in kernel histograms instead of streaming events.
        sub_bucket_bits: histogram precision (``2**bits`` sub-buckets per power of two).
        max_depth: nesting depth tracked per thread for uprobes (a power of two).
        irq_name_prefix: ``irq_path`` records host IRQ handlers whose name starts with this.

    Raises:
        ProbeError: ``irq_name_prefix`` is empty, longer than 24 characters or has characters
            other than letters, digits and ``-_.:``.
    """
    pages = 1 << max(0, (max(1, ringbuf_pages) - 1).bit_length())
    d = bpf_dir()
    ordered = sorted(probes, key=lambda p: p.probe_id)
    files = (COMMON_SOURCE, *(p.source for p in ordered))
    text = "".join((d / f).read_text(encoding="utf-8") for f in files)
    cflags = [
        f"-I{d}",
        f"-DTARGET_PID={int(pid)}",
        f"-DRINGBUF_PAGES={pages}",
        f"-DSUB_BUCKET_BITS={int(sub_bucket_bits)}",
        f"-DMAX_DEPTH={int(max_depth)}",
    ]
    if pid_map:
        cflags.append("-DVB_PID_MAP")
    if histogram:
        cflags.append("-DVB_HISTOGRAM")
    if any(p.name == "irq_path" for p in ordered):
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,24}", irq_name_prefix):
            raise ProbeError(
                f"IRQ handler name prefix {irq_name_prefix!r} is not usable",
                "use 1-24 letters, digits or -_.: (default vfio-msix)",
            )
        cflags.append(f'-DIRQ_NAME_PREFIX="{irq_name_prefix}"')
    return Program(text, tuple(cflags), files)
