"""One upload end to end in one Python process (a Spark task): read the object, split its records, parse them,
apply the rules, write its rejected CSV, processed CSV and Parquet, and say what happened.

ingest.py runs `process_group` in Spark tasks; everything an upload needs travels in an `UploadTask`, and the task
answers with a `FileResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

import output
import reader
import rules
import storage
from contract import FileResult, ManifestEntry
from errors import error_summary

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
    fallback_encoding: str | None = None


def rejected_table(records: pa.Array, numbers: pa.Array, reasons: pa.Array, key: str) -> pa.Table:
    return pa.table(
        {
            "source_file": rules.constant(key, len(records)),
            "line_number": pa.array(numbers, pa.int64()),
            "reason": reasons,
            "raw_line": records,
        }
    )


def write_folder(folder_uri: str, write, name: str, content_type: str) -> None:
    """A finished output folder: leftovers removed, one part file (streamed), then `_SUCCESS`."""
    storage.delete_folder(folder_uri)
    storage.write_streamed(storage.join_uri(folder_uri, name), write, content_type)
    storage.write_text(storage.join_uri(folder_uri, "_SUCCESS"), "", "text/plain")


def process_upload(task: UploadTask) -> FileResult:
    """Processes one upload; a file whose output cannot be written becomes a failed FileResult naming it and the
    reason. Other errors are raised (process_isolated turns them into one)."""
    entry = task.entry
    result = FileResult(entry)
    try:
        data = storage.read_bytes(storage.join_uri(task.data_root, entry.key), if_etag=entry.etag)
    except storage.Changed:
        return result.fail(f"superseded: {entry.key} was uploaded again after this run was planned (etag {entry.etag})")
    records = reader.split_records(data, entry.key, task.field_count, task.fallback_encoding)
    del data
    parsed = reader.parse_fields(records.text, task.field_count, dict(task.positions))
    corrupt = parsed.corrupt
    bad_text = pc.filter(records.text, corrupt)
    reasons = reader.reason(bad_text, parsed.field_count[corrupt.to_numpy(zero_copy_only=False)], task.field_count)
    rejected = rejected_table(bad_text, pc.filter(records.line_number, corrupt), reasons, entry.key)
    if records.undecodable:
        lines, raw, why = zip(*records.undecodable, strict=True)
        rejected = pa.concat_tables(
            [rejected, rejected_table(pa.array(raw, pa.string()), pa.array(lines), pa.array(why), entry.key)]
        ).sort_by("line_number")
    good = pc.invert(corrupt)
    raw_values = {c: pc.filter(parsed.values[c], good) for c in rules.REQUIRED_COLUMNS}
    numbers = pc.filter(records.line_number, good)
    rows_read = records.rows_read
    del parsed, records
    processed = rules.process(raw_values, numbers, entry.key, task.processing_date, task.date_formats)
    if rows_read != processed.table.num_rows + processed.duplicates_removed + rejected.num_rows:
        return result.fail(
            f"{entry.key}: internal error: rows read ({rows_read}) != processed ({processed.table.num_rows})"
            f" + rejected ({rejected.num_rows}) + duplicates removed ({processed.duplicates_removed})"
        )
    result.rows_read = rows_read
    result.rows_rejected = rejected.num_rows
    result.rows_processed = processed.table.num_rows
    result.duplicates_removed = processed.duplicates_removed
    result.quality_issues = processed.quality_issues
    # Rejected rows first, then Parquet, then the processed CSV, whose _SUCCESS marks the upload finished.
    try:
        rejected_cells = output.rejected_text(rejected)
        write_folder(
            storage.join_uri(task.output_root, entry.rejected_prefix),
            lambda sink: output.write_csv(rejected_cells, sink),
            "part-00000.csv",
            "text/csv",
        )
        if entry.parquet_prefix:
            typed = output.parquet_table(processed.table, task.processing_date)
            write_folder(
                storage.join_uri(task.output_root, entry.parquet_prefix),
                lambda sink: output.write_parquet(typed, sink),
                "part-00000.parquet",
                "application/vnd.apache.parquet",
            )
        cells = output.processed_text(processed.table)
        write_folder(
            storage.join_uri(task.output_root, entry.output_prefix),
            lambda sink: output.write_csv(cells, sink),
            "part-00000.csv",
            "text/csv",
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
    on S3, so they go SMALL_AT_ONCE at a time; bigger ones one by one (their memory)."""
    small = [(i, t) for i, t in group if t.entry.size <= SMALL_UPLOAD_BYTES]
    big = [(i, t) for i, t in group if t.entry.size > SMALL_UPLOAD_BYTES]
    results = storage.for_each(small, lambda item: (item[0], process_isolated(item[1])), SMALL_AT_ONCE)
    return results + [(i, process_isolated(task)) for i, task in big]
