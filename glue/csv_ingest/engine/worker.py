"""One upload end to end in one Python process (a Spark task): read the object, split its records, parse them,
apply the rules, write its rejected CSV, processed CSV and Parquet, and say what happened.

ingest.py runs `process_group` in Spark tasks; everything an upload needs travels in an `UploadTask`, and the task
answers with a `FileResult`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from csv_ingest.contract import output
from csv_ingest.contract.documents import FileResult, ManifestEntry
from csv_ingest.contract.errors import error_summary
from csv_ingest.engine import reader, rules
from csv_ingest.io import storage


def pandas_known_absent() -> bool:
    """pyarrow (17) tries `import pandas` again on many of its calls when pandas is not installed, each try a search
    of every sys.path entry: profiled on a run of 1,000 one-KB uploads, that was about a quarter of the CPU time.
    Where pandas is not installed, it is recorded as absent once (None in sys.modules: an import then fails at once).
    Glue ships pandas: nothing changes there. True when pandas is (now) known to be absent."""
    if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
        sys.modules["pandas"] = None  # type: ignore[assignment]
    return sys.modules.get("pandas", False) is None


pandas_known_absent()

# Uploads up to this size are processed in batches within a task (process_batch): their rules run over all their
# rows at once, BATCH_UPLOADS uploads / BATCH_BYTES bytes at most per batch, and their reads and writes (mostly
# waiting on S3) run IO_AT_ONCE at a time.
SMALL_UPLOAD_BYTES = 4 * 1024 * 1024
BATCH_UPLOADS = 500
BATCH_BYTES = 64 * 1024 * 1024
IO_AT_ONCE = 16


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


@dataclass
class ParsedUpload:
    """One upload read and parsed: its good records' raw values (for the rules), its rejected rows, its row count."""

    raw: dict[str, pa.Array]
    line_number: pa.Array
    rows_read: int
    rejected: pa.Table


def read_upload(task: UploadTask) -> bytes | FileResult:
    """The upload's bytes, or a failed FileResult when S3 holds another version now."""
    entry = task.entry
    try:
        return storage.read_bytes(storage.join_uri(task.data_root, entry.key), if_etag=entry.etag)
    except storage.Changed:
        return FileResult(entry).fail(superseded_reason(entry))


def superseded_reason(entry: ManifestEntry) -> str:
    """Why an upload whose key S3 holds another version of now is failed (the batcher plans the newer one)."""
    return f"superseded: {entry.key} was uploaded again after this run was planned (etag {entry.etag})"


def parse_upload(task: UploadTask, data: bytes) -> ParsedUpload:
    """Records split and parsed; records with the wrong field count or not decodable become rejected rows."""
    records = reader.split_records(data, task.entry.key, task.field_count, task.fallback_encoding)
    return parsed_upload(task, records, reader.parse_fields(records.text, task.field_count, dict(task.positions)))


def parsed_upload(task: UploadTask, records: reader.Records, parsed: reader.Parsed) -> ParsedUpload:
    """An upload's records and their parsed fields as the rules' input and its rejected rows."""
    key = task.entry.key
    corrupt = parsed.corrupt
    bad_text = pc.filter(records.text, corrupt)
    reasons = reader.reason(bad_text, parsed.field_count[corrupt.to_numpy(zero_copy_only=False)], task.field_count)
    rejected = rejected_table(bad_text, pc.filter(records.line_number, corrupt), reasons, key)
    if records.undecodable:
        lines, raw, why = zip(*records.undecodable, strict=True)
        rejected = pa.concat_tables(
            [rejected, rejected_table(pa.array(raw, pa.string()), pa.array(lines), pa.array(why), key)]
        ).sort_by("line_number")
    good = pc.invert(corrupt)
    raw_values = {c: pc.filter(parsed.values[c], good) for c in rules.REQUIRED_COLUMNS}
    return ParsedUpload(raw_values, pc.filter(records.line_number, good), records.rows_read, rejected)


@dataclass
class Outputs:
    """One upload's outputs, ready to write: the rejected CSV's and the processed CSV's writers, the typed rows."""

    write_rejected: Callable[[BinaryIO], None]
    typed: pa.Table
    write_processed: Callable[[BinaryIO], None]


def outputs_of(rejected: pa.Table, processed: rules.Processed, processing_date: str) -> Outputs:
    """One upload's outputs on its own (its CSV text made and written in chunks: an upload may be big; a big one's
    chunks made on every core)."""
    threads = (os.cpu_count() or 1) if processed.table.num_rows > output.CHUNK_ROWS else 1
    return Outputs(
        lambda sink: output.write_csv(output.rejected_text(rejected), sink),
        output.parquet_table(processed.table, processing_date),
        lambda sink: output.write_csv_of(processed.table, output.processed_text, sink, threads),
    )


def sliced_outputs(rejected_lines: pa.Array, typed: pa.Table, processed_lines: pa.Array) -> Outputs:
    """An upload's outputs cut from a batch's (output.csv_lines of every upload's rows at once)."""
    return Outputs(
        lambda sink: output.write_csv_lines(output.REJECTED_COLUMNS, rejected_lines, sink),
        typed,
        lambda sink: output.write_csv_lines(output.PROCESSED_COLUMNS, processed_lines, sink),
    )


def finish(task: UploadTask, parsed: ParsedUpload, processed: rules.Processed, outputs: Outputs) -> FileResult:
    """Checks that every row is accounted for, writes the upload's outputs, says what happened; a file whose output
    cannot be written becomes a failed FileResult naming it and the reason."""
    entry = task.entry
    result = FileResult(entry)
    rows_read, rejected = parsed.rows_read, parsed.rejected
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
    # Rejected rows first, then Parquet, then the processed CSV, whose _SUCCESS marks the upload finished. A big
    # upload's Parquet file is written while its CSV part is (each mostly Arrow's work, off the GIL); the CSV's
    # _SUCCESS still comes after both, and a Parquet file that fails takes the CSV part with it.
    csv_folder = storage.join_uri(task.output_root, entry.output_prefix)

    def write_parquet() -> None:
        if entry.parquet_prefix:
            write_folder(
                storage.join_uri(task.output_root, entry.parquet_prefix),
                lambda sink: output.write_parquet(outputs.typed, sink),
                "part-00000.parquet",
                "application/vnd.apache.parquet",
            )

    try:
        write_folder(
            storage.join_uri(task.output_root, entry.rejected_prefix),
            outputs.write_rejected,
            "part-00000.csv",
            "text/csv",
        )
        if outputs.typed.num_rows <= output.CHUNK_ROWS:
            write_parquet()
            write_folder(csv_folder, outputs.write_processed, "part-00000.csv", "text/csv")
        else:
            with ThreadPoolExecutor(1) as pool:
                parquet = pool.submit(write_parquet)
                try:
                    storage.delete_folder(csv_folder)
                    storage.write_streamed(
                        storage.join_uri(csv_folder, "part-00000.csv"), outputs.write_processed, "text/csv"
                    )
                finally:
                    wait([parquet])
                try:
                    parquet.result()
                except Exception:
                    storage.delete_folder(csv_folder)
                    raise
            storage.write_text(storage.join_uri(csv_folder, "_SUCCESS"), "", "text/plain")
    except Exception as err:  # noqa: BLE001 - a failed write fails the upload with the reason
        return result.fail(f"{entry.key}: could not write output: {error_summary(err)}")
    return result


def process_upload(task: UploadTask) -> FileResult:
    """Processes one upload; a file whose output cannot be written becomes a failed FileResult naming it and the
    reason. Other errors are raised (process_isolated turns them into one)."""
    data = read_upload(task)
    if isinstance(data, FileResult):
        return data
    parsed = parse_upload(task, data)
    del data
    return finish(task, parsed, *apply_rules(task, parsed))


def apply_rules(task: UploadTask, parsed: ParsedUpload) -> tuple[rules.Processed, Outputs]:
    """One upload's rules and outputs on its own. Its raw values are handed over to the rules (the parsed upload
    keeps none, so they can be freed as the rules go)."""
    raw = dict(parsed.raw)
    parsed.raw.clear()
    processed = rules.process(raw, parsed.line_number, task.entry.key, task.processing_date, task.date_formats)
    return processed, outputs_of(parsed.rejected, processed, task.processing_date)


def failed_with(task: UploadTask, err: Exception) -> FileResult:
    """The failed FileResult of an upload whose processing raised `err`."""
    key = task.entry.key
    if isinstance(err, FileNotFoundError):
        return FileResult(task.entry).fail(f"{key}: object not found at {storage.join_uri(task.data_root, key)}")
    return FileResult(task.entry).fail(f"{key}: processing failed: {error_summary(err)}")


def process_isolated(task: UploadTask) -> FileResult:
    """`process_upload`, where any error fails that upload only, with the reason."""
    try:
        return process_upload(task)
    except Exception as err:  # noqa: BLE001 - one upload's failure must not sink the others
        return failed_with(task, err)


def process_batch(batch: Sequence[tuple[int, UploadTask]]) -> list[tuple[int, FileResult]]:
    """Small uploads together: read IO_AT_ONCE at a time (they mostly wait on S3), parsed one by one, the rules run
    once over all their rows (rules.process_uploads keeps each rule within its upload) and the output text made
    once, then each upload's outputs written, IO_AT_ONCE at a time. An upload that cannot be read or parsed fails
    alone; if the batch's rules fail, each upload is processed alone (so one bad upload fails only itself)."""
    answers: dict[int, FileResult] = {}

    def read(item: tuple[int, UploadTask]) -> bytes | FileResult:
        try:
            return read_upload(item[1])
        except Exception as err:  # noqa: BLE001 - an unreadable object fails that upload only
            return failed_with(item[1], err)

    split: dict[tuple, list[tuple[int, UploadTask, reader.Records]]] = {}
    for (i, task), data in zip(batch, storage.for_each(batch, read, IO_AT_ONCE), strict=True):
        if isinstance(data, FileResult):
            answers[i] = data
            continue
        try:
            records = reader.split_records(data, task.entry.key, task.field_count, task.fallback_encoding)
            split.setdefault((task.field_count, task.positions), []).append((i, task, records))
        except Exception as err:  # noqa: BLE001 - one upload's failure must not sink the others
            answers[i] = failed_with(task, err)
    ready: list[tuple[int, UploadTask, ParsedUpload]] = []
    for (field_count, positions), members in split.items():
        # Parsing goes record by record: the records of uploads with the same header layout are parsed at once.
        try:
            texts = pa.concat_arrays([records.text for _, _, records in members])  # string: a batch is < 2 GiB
            parsed = reader.parse_fields(texts, field_count, dict(positions))
            start = 0
            for i, task, records in members:
                n = len(records.text)
                part = reader.Parsed(
                    {c: v.slice(start, n) for c, v in parsed.values.items()},
                    parsed.corrupt.slice(start, n),
                    parsed.field_count[start : start + n],
                )
                ready.append((i, task, parsed_upload(task, records, part)))
                start += n
        except Exception:  # noqa: BLE001 - isolate: each upload alone
            ready = [r for r in ready if r[0] not in {i for i, _, _ in members}]
            for i, task, records in members:
                try:
                    one = reader.parse_fields(records.text, task.field_count, dict(task.positions))
                    ready.append((i, task, parsed_upload(task, records, one)))
                except Exception as err:  # noqa: BLE001
                    answers[i] = failed_with(task, err)
    if not ready:
        return [(i, answers[i]) for i, _ in batch]
    try:
        done = _together(ready)
    except Exception:  # noqa: BLE001 - isolate: each upload alone
        done = []
        for i, task, parsed in ready:
            try:
                done.append((i, task, parsed, *apply_rules(task, parsed)))
            except Exception as err:  # noqa: BLE001
                answers[i] = failed_with(task, err)

    def write(item) -> tuple[int, FileResult]:
        i, task, parsed, processed, outs = item
        try:
            return i, finish(task, parsed, processed, outs)
        except Exception as err:  # noqa: BLE001
            return i, failed_with(task, err)

    answers.update(storage.for_each(done, write, IO_AT_ONCE))
    return [(i, answers[i]) for i, _ in batch]


def _together(ready: list[tuple[int, UploadTask, ParsedUpload]]):
    """The rules and the output text for several parsed uploads at once; per upload (i, task, parsed, processed,
    outputs)."""
    first = ready[0][1]
    if any((t.processing_date, t.date_formats) != (first.processing_date, first.date_formats) for _, t, _ in ready):
        raise ValueError("uploads of one batch must share the processing date and date formats")
    raw = {c: pa.concat_arrays([p.raw[c] for _, _, p in ready]) for c in rules.REQUIRED_COLUMNS}
    lines = pa.concat_arrays([pa.array(p.line_number, pa.int64()) for _, _, p in ready])
    uploads = [(t.entry.key, len(p.line_number)) for _, t, p in ready]
    processed = rules.process_uploads(raw, lines, uploads, first.processing_date, first.date_formats)
    # The output text of every upload at once, then sliced per upload (the rows of each upload are contiguous).
    table = pa.concat_tables([p.table for p in processed])
    typed = output.parquet_table(table, first.processing_date)
    processed_lines = output.csv_lines(output.processed_text(table))
    rejected = pa.concat_tables([p.rejected for _, _, p in ready])
    rejected_lines = output.csv_lines(output.rejected_text(rejected))
    done, row, bad = [], 0, 0
    for (i, task, parsed), result in zip(ready, processed, strict=True):
        n, r = result.table.num_rows, parsed.rejected.num_rows
        outs = sliced_outputs(rejected_lines.slice(bad, r), typed.slice(row, n), processed_lines.slice(row, n))
        done.append((i, task, parsed, result, outs))
        row, bad = row + n, bad + r
    return done


def batches(items: Sequence[tuple[int, UploadTask]]) -> list[list[tuple[int, UploadTask]]]:
    """Consecutive items in batches of at most BATCH_UPLOADS uploads and BATCH_BYTES bytes (at least one each)."""
    out: list[list[tuple[int, UploadTask]]] = []
    size = 0
    for item in items:
        if not out or len(out[-1]) >= BATCH_UPLOADS or size + item[1].entry.size > BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(item)
        size += item[1].entry.size
    return out


def process_group(group: Sequence[tuple[int, UploadTask]]) -> list[tuple[int, FileResult]]:
    """One Spark task's uploads, each with its own result: (index, result) pairs in `group` order. Small uploads go
    in batches (process_batch); bigger ones one by one (their memory)."""
    small = [(i, t) for i, t in group if t.entry.size <= SMALL_UPLOAD_BYTES]
    big = [(i, t) for i, t in group if t.entry.size > SMALL_UPLOAD_BYTES]
    answers = dict(answer for batch in batches(small) for answer in process_batch(batch))
    answers.update((i, process_isolated(task)) for i, task in big)
    return [(i, answers[i]) for i, _ in group]
