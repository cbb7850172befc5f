"""The job's error classes: one base, one subclass per failure class, each message naming the failing thing."""

from __future__ import annotations


class IngestError(Exception):
    """Base of every error the ingest job raises on purpose."""


class ManifestError(IngestError):
    """The manifest cannot be read or does not have the shared format (infrastructure: the run cannot start)."""


class FileRejected(IngestError):
    """One upload cannot be processed; the run goes on with the others and the stats carry the reason."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class RunFailed(IngestError):
    """Nothing in the run could be processed (raised after the stats are written)."""


def error_summary(err: BaseException) -> str:
    """One line naming an unexpected error: its type and the first line of its message. For an error of the JVM
    (py4j's Py4JJavaError, whose own first line only names the call), the first line of its root cause."""
    text = str(err)
    cause = getattr(err, "java_exception", None)
    if cause is not None:
        try:
            while cause.getCause() is not None:
                cause = cause.getCause()
            text = str(cause.toString())
        except Exception:  # noqa: BLE001, S110 - the JVM is gone: keep what py4j said
            pass
    lines = text.strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")
