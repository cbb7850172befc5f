"""One run of the ingest job: check exactly the manifest's uploads on the driver (version, header), then process
each upload in a Spark task (worker.py: the one engine), and say per upload what happened.

Spark is the executor: uploads are dealt over tasks by size (`balanced_slices`), so a burst of uploads spreads over
the cluster. Per-upload isolation: a file that cannot be processed becomes a failed FileResult with a reason; if
the tasks' Spark job itself fails (a Python worker killed, for memory say), each upload is tried alone.
"""

from __future__ import annotations

import atexit
import csv
import functools
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from csv_ingest.contract.documents import FileResult, Manifest
from csv_ingest.contract.errors import FileRejected, error_summary
from csv_ingest.engine import rules, split, worker
from csv_ingest.io import storage

LOG = logging.getLogger("csv_ingest")

HEADER_PROBE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Layout:
    """Where the required columns are in one file's header."""

    field_count: int
    positions: tuple[tuple[str, int], ...]


def inspect_header(head: bytes, key: str, fallback_encoding: str | None = None) -> Layout:
    """The layout of a file from its first bytes; raises FileRejected naming the file and the reason."""
    if not head:
        raise FileRejected(key, "file is empty (no header row)")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRejected(key, "not UTF-8 text (UTF-16 byte-order mark)")
    head = head.removeprefix(b"\xef\xbb\xbf")
    end = min((i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0), default=-1)
    if end < 0 and len(head) >= HEADER_PROBE_BYTES - 3:
        raise FileRejected(key, f"no line break in the first {HEADER_PROBE_BYTES // 1024} KiB: not a CSV file")
    line = head if end < 0 else head[:end]
    if b"\x00" in line:
        raise FileRejected(key, "not a CSV text file (NUL bytes in the header row)")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        try:
            text = line.decode(fallback_encoding) if fallback_encoding else None
        except UnicodeDecodeError:
            text = None
        if text is None:
            raise FileRejected(key, f"not valid UTF-8 (header row, byte {err.start + 1})") from err
    if not text.strip():
        raise FileRejected(key, "header row is empty")
    names = next(csv.reader([text]))
    normalized = [n.strip().lower() for n in names]
    missing = [c for c in rules.REQUIRED_COLUMNS if c not in normalized]
    if missing:
        shown = ", ".join(names)[:200]
        raise FileRejected(key, f"missing required column(s): {', '.join(missing)} (header: {shown})")
    repeated = [c for c in rules.REQUIRED_COLUMNS if normalized.count(c) > 1]
    if repeated:
        raise FileRejected(key, f"column(s) named more than once in the header: {', '.join(repeated)}")
    return Layout(len(names), tuple((c, normalized.index(c)) for c in rules.REQUIRED_COLUMNS))


def check_uploads(
    manifest: Manifest,
    data_root: str,
    read_head: Callable[[str, int, str], bytes] = storage.read_current_head,
    fallback_encoding: str | None = None,
) -> list[Layout | str]:
    """Per upload, in manifest order: its header layout, or why it cannot be processed. One S3 request an upload
    (its first bytes, if it is still the manifest's version), uploads in parallel: a run of thousands is checked in
    seconds, not minutes."""
    newest: dict[str, int] = {}
    for i, entry in enumerate(manifest.uploads):
        j = newest.get(entry.key)
        if j is None or manifest.uploads[j].last_modified < entry.last_modified:
            newest[entry.key] = i

    def check_upload(i: int) -> Layout | str:
        entry = manifest.uploads[i]
        if newest[entry.key] != i:
            return f"{entry.key}: a newer version of this key is in the same run"
        uri = storage.join_uri(data_root, entry.key)
        try:
            return inspect_header(read_head(uri, HEADER_PROBE_BYTES, entry.etag), entry.key, fallback_encoding)
        except storage.Changed:
            # Re-uploaded after this run was planned: these bytes belong to the newer upload, which is recorded and
            # processed on its own; processing them here would label them with the wrong version.
            return worker.superseded_reason(entry)
        except FileRejected as err:
            return str(err)
        except FileNotFoundError:
            return f"{entry.key}: object not found at {uri}"
        except Exception as err:  # noqa: BLE001 - an unreadable object fails that upload only
            return f"{entry.key}: could not read the object: {error_summary(err)}"

    return storage.for_each(range(len(manifest.uploads)), check_upload)


def run_ingest(
    spark: SparkSession,
    manifest: Manifest,
    data_root: str,
    output_root: str,
    processing_date: str,
    date_formats: Sequence[str] = rules.DEFAULT_DATE_FORMATS,
    read_head: Callable[[str, int, str], bytes] = storage.read_current_head,
    ship_modules: bool = True,
    fallback_encoding: str | None = None,
    split_bytes: int = split.SPLIT_BYTES,
) -> list[FileResult]:
    """Processes every upload of the manifest; returns one FileResult per upload, in manifest order. Uploads up to
    `split_bytes` are processed whole, each in one task (worker.py); bigger ones each over the cluster (split.py).
    `ship_modules`: send the job's modules to Spark's Python workers (not on Glue, which ships them itself)."""
    results = [FileResult(entry) for entry in manifest.uploads]
    tasks: dict[int, worker.UploadTask] = {}
    for i, found in enumerate(check_uploads(manifest, data_root, read_head, fallback_encoding)):
        if not isinstance(found, Layout):
            results[i] = results[i].fail(found)
            continue
        tasks[i] = worker.UploadTask(
            manifest.uploads[i], data_root, output_root, found.field_count, found.positions, processing_date,
            tuple(date_formats), fallback_encoding,
        )  # fmt: skip
    big = {i: t for i, t in tasks.items() if t.entry.size > split_bytes}
    small = {i: t for i, t in tasks.items() if i not in big}
    if small:
        for i, result in _run_tasks(spark, small, ship_modules).items():
            results[i] = result
    if big:
        _ship(spark, ship_modules)
    for i, task in big.items():  # one at a time, each over the whole cluster
        try:
            results[i] = split.process_split(spark, task, ship_modules)
        except Exception as err:  # noqa: BLE001 - one upload's failure must not sink the others
            uri = storage.join_uri(data_root, task.entry.key)
            if storage.was_changed(err, uri, task.entry.etag):  # a part's read met a newer version (If-Match)
                results[i] = FileResult(task.entry).fail(worker.superseded_reason(task.entry))
            else:
                results[i] = FileResult(task.entry).fail(f"{task.entry.key}: processing failed: {error_summary(err)}")
            _clear_outputs(task)
    for r in results:
        LOG.info("%s: %s %s", r.entry.key, r.status, r.error or "")
    return results


def _clear_outputs(task: worker.UploadTask) -> None:
    """A failed big upload leaves nothing in its folders: its tasks write their parts (rejected rows first) as they
    go, and the catalog's tables read every part file, finished folder or not. Best effort: a folder left over is
    cleared by the next attempt of the same version before it writes."""
    entry = task.entry
    for prefix in (entry.rejected_prefix, entry.parquet_prefix, entry.output_prefix):
        if not prefix:
            continue
        try:
            storage.delete_folder(storage.join_uri(task.output_root, prefix))
        except Exception as err:  # noqa: BLE001 - the upload's result stands; the next attempt clears the folder
            LOG.warning("%s: could not clear %s after its failure: %s", entry.key, prefix, error_summary(err))


def _run_tasks(spark: SparkSession, tasks: dict[int, worker.UploadTask], ship_modules: bool) -> dict[int, FileResult]:
    """Every upload's result; if the tasks' Spark job fails (a Python worker killed, for memory say), each upload is
    tried alone, and one that fails alone is failed with the reason."""
    try:
        return dict(zip(tasks, run_in_tasks(spark, list(tasks.values()), ship_modules), strict=True))
    except Exception as err:  # noqa: BLE001 - isolate: each upload alone
        LOG.warning("upload tasks failed (%s); each upload alone", error_summary(err))
    answers: dict[int, FileResult] = {}
    for i, task in tasks.items():
        try:
            (answers[i],) = run_in_tasks(spark, [task], ship_modules)
        except Exception as alone:  # noqa: BLE001
            answers[i] = FileResult(task.entry).fail(f"{task.entry.key}: processing failed: {error_summary(alone)}")
    return answers


def _ship(spark: SparkSession, ship_modules: bool) -> None:
    if ship_modules:  # local Spark: the workers import the job's package from this zip (on Glue: --extra-py-files)
        spark.sparkContext.addPyFile(package_zip())


@functools.cache
def package_zip() -> str:
    """The csv_ingest package as one zip, as infra ships it to Glue: every .py file under it, nothing else."""
    package = Path(__file__).resolve().parent
    folder = tempfile.mkdtemp(prefix="csv-ingest-package-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    target = Path(folder) / "csv_ingest.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for source in sorted(package.rglob("*.py")):
            archive.write(source, str(source.relative_to(package.parent)))
    return str(target)


def balanced_slices(sizes: Sequence[int], slices: int) -> list[list[int]]:
    """Indexes of `sizes` dealt into `slices` groups of about equal total size (largest first, each to the lightest
    group): one big upload does not share its task with others while the rest of the cluster idles."""
    groups: list[list[int]] = [[] for _ in range(max(1, min(slices, len(sizes))))]
    totals = [0] * len(groups)
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        lightest = totals.index(min(totals))
        groups[lightest].append(i)
        totals[lightest] += sizes[i]
    return [g for g in groups if g]


def run_in_tasks(spark: SparkSession, tasks: list[worker.UploadTask], ship_modules: bool = True) -> list[FileResult]:
    """worker.process_group on Spark's Python workers: uploads spread over a few tasks per core, results in `tasks`
    order."""
    sc = spark.sparkContext
    _ship(spark, ship_modules)
    groups = balanced_slices([t.entry.size for t in tasks], 4 * sc.defaultParallelism)
    answers = (
        sc.parallelize([[(i, tasks[i]) for i in g] for g in groups], len(groups))
        .flatMap(worker.process_group)
        .collect()
    )
    results: list[FileResult | None] = [None] * len(tasks)
    for i, result in answers:
        results[i] = result
    return results  # type: ignore[return-value]
