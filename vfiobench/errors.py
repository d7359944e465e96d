"""The one place expected failures are named.

Every failure a user can cause or fix (a missing symbol, no root, a corrupt run directory, a bad
notebook parameter) is a :class:`VfioBenchError` subclass whose message says what is wrong and whose
``hint`` says what to do. The CLI prints both on one line and exits non-zero without a traceback;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class VfioBenchError(Exception):
    """Base class of every expected failure.

    Args:
        message: What is wrong, in one sentence, naming the file, symbol or parameter involved.
        hint: What to do about it (optional), e.g. ``"run as root"``.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class RunStoreError(VfioBenchError):
    """A run directory is missing, corrupt, foreign, or of an unknown schema version."""


class ProbeError(VfioBenchError):
    """A probe cannot be resolved, compiled or attached."""


class PrivilegeError(ProbeError):
    """The operation needs root (BPF loading, tracefs)."""


class MissingSymbolError(ProbeError):
    """The target binary or kernel has no such (traceable) symbol."""


class MissingBinaryError(ProbeError):
    """The target binary does not exist or is not an ELF file."""


class KprobesUnavailableError(ProbeError):
    """The running kernel was built without kprobes."""


class TracefsError(ProbeError):
    """tracefs is not mounted."""


class BccError(ProbeError):
    """BCC is not importable, cannot find kernel headers, or cannot compile the probes."""


class ReportError(VfioBenchError):
    """A report cannot be rendered (bad parameter, unknown variant, missing notebook)."""


class LabError(VfioBenchError):
    """The emulated lab failed: image build, boot, timeout, job failure."""


class QemuError(VfioBenchError):
    """A QEMU binary cannot be inspected, built or launched."""


class ExperimentError(VfioBenchError):
    """An experiment spec is invalid or an experiment cannot proceed."""


class AnalysisError(VfioBenchError):
    """Analysis input is unusable: a missing column, an unknown metric or variant, no samples."""
