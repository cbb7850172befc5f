"""The two documents shared with the TypeScript trigger: the manifest (what a run reads) and the stats (what it did).

Their shapes are defined in packages/core/src/manifest/format.ts; the test vectors in
packages/core/src/manifest/examples/ are checked by the tests here too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from csv_ingest.contract.errors import ManifestError

MANIFEST_FORMAT = "csv-ingest-manifest/1"
STATS_FORMAT = "csv-ingest-stats/1"
PROCESSED = "processed"
FAILED = "failed"


@dataclass(frozen=True)
class ManifestEntry:
    upload_id: str
    key: str
    version_id: str | None
    etag: str
    last_modified: str
    size: int
    output_prefix: str
    rejected_prefix: str
    parquet_prefix: str | None = None  # manifests written before Parquet outputs have none


@dataclass(frozen=True)
class Manifest:
    run_key: str
    created_at: str
    bucket: str
    stats_key: str
    uploads: tuple[ManifestEntry, ...]
    file_stats_key: str | None = None  # where the per-file stats go as JSON Lines (one object per upload)

    def location(self, prefix: str) -> str:
        """The logical s3:// location of a key or prefix, whatever output root the job wrote to."""
        return f"s3://{self.bucket}/{prefix}"


def _field(doc: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind):
        raise ManifestError(f"{where}: field {name!r} is missing or not {getattr(kind, '__name__', kind)}")
    return value


def parse_manifest(text: str, where: str) -> Manifest:
    """Parses a manifest document; raises ManifestError naming what is wrong."""
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise ManifestError(f"{where}: manifest is not JSON ({err})") from err
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: manifest is not a JSON object")
    if doc.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{where}: manifest format is {doc.get('format')!r}, want {MANIFEST_FORMAT!r}")
    uploads = _field(doc, "uploads", list, where)
    entries = []
    for i, u in enumerate(uploads):
        at = f"{where}: uploads[{i}]"
        if not isinstance(u, dict):
            raise ManifestError(f"{at} is not an object")
        parquet_prefix = u.get("parquetPrefix")
        if parquet_prefix is not None and not isinstance(parquet_prefix, str):
            raise ManifestError(f"{at}: field 'parquetPrefix' is not a string")
        version_id = u.get("versionId")
        if version_id is not None and not isinstance(version_id, str):
            raise ManifestError(f"{at}: field 'versionId' is not a string or null")
        entries.append(
            ManifestEntry(
                upload_id=_field(u, "uploadId", str, at),
                key=_field(u, "key", str, at),
                version_id=version_id,
                etag=_field(u, "etag", str, at),
                last_modified=_field(u, "lastModified", str, at),
                size=_field(u, "size", int, at),
                output_prefix=_field(u, "outputPrefix", str, at),
                rejected_prefix=_field(u, "rejectedPrefix", str, at),
                parquet_prefix=parquet_prefix,
            )
        )
    file_stats_key = doc.get("fileStatsKey")
    if file_stats_key is not None and not isinstance(file_stats_key, str):
        raise ManifestError(f"{where}: field 'fileStatsKey' is not a string")
    return Manifest(
        file_stats_key=file_stats_key,
        run_key=_field(doc, "runKey", str, where),
        created_at=_field(doc, "createdAt", str, where),
        bucket=_field(doc, "bucket", str, where),
        stats_key=_field(doc, "statsKey", str, where),
        uploads=tuple(entries),
    )


@dataclass
class FileResult:
    """What the run did with one upload: one entry of the stats' `files`."""

    entry: ManifestEntry
    status: str = PROCESSED
    error: str | None = None
    rows_read: int = 0
    rows_processed: int = 0
    rows_rejected: int = 0
    duplicates_removed: int = 0
    quality_issues: dict[str, int] = field(default_factory=dict)

    def fail(self, error: str) -> FileResult:
        """Marks the upload failed: no output, no row counts (nothing of it was published)."""
        return FileResult(entry=self.entry, status=FAILED, error=error)

    def to_json(self, manifest: Manifest) -> dict[str, Any]:
        ok = self.status == PROCESSED
        return {
            "uploadId": self.entry.upload_id,
            "key": self.entry.key,
            "status": self.status,
            "error": self.error,
            "rowsRead": self.rows_read,
            "rowsProcessed": self.rows_processed,
            "rowsRejected": self.rows_rejected,
            "duplicatesRemoved": self.duplicates_removed,
            "qualityIssues": dict(sorted(self.quality_issues.items())),
            "output": manifest.location(self.entry.output_prefix) if ok else None,
            "rejectedOutput": manifest.location(self.entry.rejected_prefix) if ok else None,
            "parquetOutput": manifest.location(self.entry.parquet_prefix) if ok and self.entry.parquet_prefix else None,
        }


def file_stats_lines(stats: Mapping[str, Any]) -> str:
    """The per-file stats as JSON Lines (one object per upload, on one line each, with the run's key and
    processing date): what the file_stats table reads."""
    lines = [
        json.dumps({"runKey": stats["runKey"], "processingDate": stats["processingDate"], **f}, ensure_ascii=False)
        for f in stats["files"]
    ]
    return "".join(line + "\n" for line in lines)


def build_stats(manifest: Manifest, processing_date: str, results: Iterable[FileResult]) -> dict[str, Any]:
    """The stats document (format csv-ingest-stats/1), totals summed from the files."""
    files = [r.to_json(manifest) for r in results]
    issues: dict[str, int] = {}
    for f in files:
        for kind, n in f["qualityIssues"].items():
            issues[kind] = issues.get(kind, 0) + n
    return {
        "format": STATS_FORMAT,
        "runKey": manifest.run_key,
        "processingDate": processing_date,
        "totals": {
            "files": len(files),
            "filesProcessed": sum(1 for f in files if f["status"] == PROCESSED),
            "filesFailed": sum(1 for f in files if f["status"] == FAILED),
            "rowsRead": sum(f["rowsRead"] for f in files),
            "rowsProcessed": sum(f["rowsProcessed"] for f in files),
            "rowsRejected": sum(f["rowsRejected"] for f in files),
            "duplicatesRemoved": sum(f["duplicatesRemoved"] for f in files),
            "qualityIssues": dict(sorted(issues.items())),
        },
        "files": files,
    }
