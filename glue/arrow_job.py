"""One upload end to end in one Python process, on Arrow (the vectorised engine): read the object, split and parse
its lines, apply the rules (arrow_rules), write its rejected and processed CSVs, and say what happened.

ingest.py sends every upload small enough for one task here, one Spark task per upload (so a burst of uploads is
spread over the cluster); bigger uploads go through the Spark plan of transform.py. Both give identical files.
Runs inside Spark's Python workers: everything it needs travels in an `UploadTask`, and it answers with a
`FileResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

import arrow_csv
import arrow_lines
import arrow_rules
import storage
import transform
from contract import FileResult, ManifestEntry
from errors import FileRejected, error_summary

# Uploads up to this size are processed SMALL_AT_ONCE at a time within a task (see process_group).
SMALL_UPLOAD_BYTES = 4 * 1024 * 1024
SMALL_AT_ONCE = 8


@dataclass(frozen=True)
class UploadTask:
    """Everything one upload's processing needs (pickled to a Spark worker)."""

    entry: ManifestEntry
    data_root: str
    output_root: str
    field_count: int
    positions: tuple[tuple[str, int], ...]
    processing_date: str
    date_formats: tuple[str, ...]


def rejected_table(lines: pa.Array, line_numbers: pa.Array, field_count: int, key: str) -> pa.Table:
    """transform.rejected_rows for the corrupt lines of one upload."""
    return pa.table(
        {
            "source_file": arrow_rules.constant(key, len(lines)),
            transform.LINE_NUMBER: pa.array(line_numbers, pa.int64()),
            "reason": arrow_lines.reason(lines, field_count),
            "raw_line": lines,
        }
    )


def write_folder(folder_uri: str, table: pa.Table) -> None:
    """A finished output folder: leftovers removed, the rows in line order as one part file (streamed), then
    `_SUCCESS`. One part, as the Spark plan writes each upload of a run of several."""
    storage.delete_folder(folder_uri)
    part = storage.join_uri(folder_uri, "part-00000.csv")
    storage.write_streamed(part, lambda handle: arrow_csv.write_csv(table, handle), "text/csv")
    storage.write_text(storage.join_uri(folder_uri, "_SUCCESS"), "", "text/plain")


def process_upload(task: UploadTask) -> FileResult:
    """Processes one upload; a file that cannot be processed, or whose output cannot be written, becomes a failed
    FileResult naming it and the reason. Other errors are raised (process_isolated turns them into one)."""
    entry = task.entry
    result = FileResult(entry)
    try:
        data = storage.read_bytes(storage.join_uri(task.data_root, entry.key), if_etag=entry.etag)
    except storage.Changed:
        # Re-uploaded since the driver checked it: these bytes belong to the newer upload, processed on its own.
        return result.fail(f"superseded: {entry.key} was uploaded again after this run was planned (etag {entry.etag})")
    try:
        lines = arrow_lines.split_lines(data, entry.key)
    except FileRejected as err:
        return result.fail(str(err))
    del data  # each step lets go of what the next no longer needs: a task's peak memory is several times the file
    rows = pc.invert(lines.blank)
    text, numbers = pc.filter(lines.text, rows), pc.filter(lines.line_number, rows)
    del lines, rows
    try:
        parsed = arrow_lines.parse_fields(text, task.field_count, dict(task.positions))
    except arrow_lines.TooManyFields as err:
        line = numbers[err.index].as_py()
        limit = arrow_lines.MAX_FIELDS
        return result.fail(
            f"{entry.key}: line {line} has {err.count} fields, more than the {limit} a CSV line may have"
        )
    corrupt = parsed.corrupt
    rejected = rejected_table(pc.filter(text, corrupt), pc.filter(numbers, corrupt), task.field_count, entry.key)
    rows_read = len(text)
    del text
    good = pc.invert(corrupt)
    raw = {c: pc.filter(parsed.values[c], good) for c in transform.REQUIRED_COLUMNS}
    del parsed
    processed = arrow_rules.process(raw, pc.filter(numbers, good), entry.key, task.processing_date, task.date_formats)
    result.rows_read = rows_read
    result.rows_rejected = rejected.num_rows
    result.rows_processed = processed.table.num_rows
    result.duplicates_removed = processed.duplicates_removed
    result.quality_issues = processed.quality_issues
    # Rejected rows first, then the processed CSV, whose _SUCCESS marks the upload finished.
    try:
        write_folder(storage.join_uri(task.output_root, entry.rejected_prefix), rejected)
        write_folder(
            storage.join_uri(task.output_root, entry.output_prefix),
            processed.table.select(list(transform.OUTPUT_COLUMNS)),
        )
    except Exception as err:  # noqa: BLE001 - a failed write fails the upload with the reason
        return result.fail(f"{entry.key}: could not write output: {error_summary(err)}")
    return result


def process_isolated(task: UploadTask) -> FileResult:
    """`process_upload`, where any error fails that upload only, with the reason."""
    key = task.entry.key
    try:
        return process_upload(task)
    except FileNotFoundError:
        return FileResult(task.entry).fail(f"{key}: object not found at {storage.join_uri(task.data_root, key)}")
    except Exception as err:  # noqa: BLE001 - one upload's failure must not sink the others
        return FileResult(task.entry).fail(f"{key}: processing failed: {error_summary(err)}")


def process_group(group: Sequence[tuple[int, UploadTask]]) -> list[tuple[int, FileResult]]:
    """One Spark task's uploads, each processed on its own: (index, result) pairs. Small uploads are mostly waiting
    on S3 (a read, two listings, four writes each), so they go SMALL_AT_ONCE at a time; bigger ones one by one
    (their memory)."""
    small = [(i, t) for i, t in group if t.entry.size <= SMALL_UPLOAD_BYTES]
    big = [(i, t) for i, t in group if t.entry.size > SMALL_UPLOAD_BYTES]
    results = storage.for_each(small, lambda item: (item[0], process_isolated(item[1])), SMALL_AT_ONCE)
    return results + [(i, process_isolated(task)) for i, task in big]
