"""One run of the ingest job: read exactly the manifest's uploads, apply the rules, publish each upload's outputs,
and say per upload what happened. Extract and load live here; the rules live in transform.py.

How one pass serves the whole run: every readable upload is read as text once (grouped by header layout), parsed
and cached; line numbers come from the text splits (block start + row position), so no row is read twice.
Per-upload isolation: a file that cannot be processed becomes a failed FileResult with a reason; if the shared
pass itself breaks, each upload is retried alone so one bad file cannot sink the others.
"""

from __future__ import annotations

import csv
import logging
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce
from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import arrow_csv
import arrow_job
import arrow_lines
import arrow_rules
import contract
import errors
import storage
import transform
from contract import FileResult, Manifest
from errors import FileRejected, IngestError, error_summary

LOG = logging.getLogger("csv_ingest")

HEADER_PROBE_BYTES = 64 * 1024
# An upload processed alone by the Spark plan gets one part file per this many processed rows (written in parallel).
ROWS_PER_PART = 500_000
# Uploads up to this size are processed whole in one Spark task on Arrow (arrow_job: several times faster); bigger
# ones by the Spark plan of transform.py, which splits a file over the cluster. A task's peak memory is 6-8x the
# file's size (measured: 646 MiB for 67 MiB, 2.0 GiB for 274 MiB), so four such tasks at once (a G.1X worker's
# 4 cores) stay under 4 GiB at this limit.
ARROW_MAX_BYTES = 128 * 1024 * 1024
CSV_WRITE_OPTIONS = {"header": "true", "quote": '"', "escape": '"', "emptyValue": "", "lineSep": "\n"}
_GLOB_CHARS = re.compile(r"([\\*?\[\]{}])")


@dataclass(frozen=True)
class Layout:
    """Where the required columns are in one file's header."""

    field_count: int
    positions: tuple[tuple[str, int], ...]


def inspect_header(head: bytes, key: str) -> Layout:
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
        raise FileRejected(key, f"not valid UTF-8 (header row, byte {err.start + 1})") from err
    if not text.strip():
        raise FileRejected(key, "header row is empty")
    names = next(csv.reader([text]))
    normalized = [n.strip().lower() for n in names]
    missing = [c for c in transform.REQUIRED_COLUMNS if c not in normalized]
    if missing:
        shown = ", ".join(names)[:200]
        raise FileRejected(key, f"missing required column(s): {', '.join(missing)} (header: {shown})")
    repeated = [c for c in transform.REQUIRED_COLUMNS if normalized.count(c) > 1]
    if repeated:
        raise FileRejected(key, f"column(s) named more than once in the header: {', '.join(repeated)}")
    return Layout(len(names), tuple((c, normalized.index(c)) for c in transform.REQUIRED_COLUMNS))


def spark_path(uri: str) -> str:
    """A URI Spark reads literally (glob characters escaped)."""
    return _GLOB_CHARS.sub(r"\\\1", uri)


def path_identity(uri: str, encoded: bool = False) -> str:
    """Compares what we asked Spark to read with what it reports (`_metadata.file_path` is URL-encoded)."""
    text = unquote(uri) if encoded else uri
    return re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*:", "", text).lstrip("/")


def write_csv(df: DataFrame, uri: str) -> None:
    """Spark's committer writes `_SUCCESS` last: a folder without it is not finished."""
    df.write.mode("overwrite").options(**CSV_WRITE_OPTIONS).csv(uri)


def _publish_together(
    spark: SparkSession,
    enriched: DataFrame,
    lines: DataFrame,
    publish: list[int],
    manifest: Manifest,
    output_root: str,
    field_count: dict[int, int],
    results: list[FileResult],
) -> None:
    """Writes every upload's processed and rejected rows in one Spark write each (partitioned by upload, under
    processed/_staging/<runKey>/), then moves each upload's part into its folder and marks it finished."""
    uploads = manifest.uploads
    staging = storage.join_uri(output_root, f"processed/_staging/{manifest.run_key}/")
    index = spark.createDataFrame([(uploads[i].key, i) for i in publish], "source_file string, _upload int")
    # A fixed number of write tasks: writing one file per upload is latency-bound (on S3 above all), and left to
    # itself adaptive execution would fold a small run's rows into ONE task that writes every upload's file in turn.
    writers = max(1, min(len(publish), spark.sparkContext.defaultParallelism))
    processed = (
        enriched.join(F.broadcast(index), "source_file")
        .repartition(writers, "_upload")
        .sortWithinPartitions("_upload", transform.LINE_NUMBER)
    )
    processed = transform.output_rows(processed, "_upload")
    by_count: dict[int, list[int]] = defaultdict(list)
    for i in publish:
        by_count[field_count[i]].append(i)
    rejected = reduce(
        DataFrame.unionByName,
        [
            transform.rejected_rows(lines.filter(F.col("_upload").isin(idxs)), count).join(
                F.broadcast(index), "source_file"
            )
            for count, idxs in by_count.items()
        ],
    )
    rejected = rejected.repartition(writers, "_upload").sortWithinPartitions("_upload", transform.LINE_NUMBER)
    for df, kind in ((rejected, "rejected"), (processed, "processed")):
        df.write.mode("overwrite").partitionBy("_upload").options(**CSV_WRITE_OPTIONS).csv(
            storage.join_uri(staging, kind)
        )
    publish_staged(staging, manifest, publish, output_root, results)


def publish_staged(
    staging: str, manifest: Manifest, publish: list[int], output_root: str, results: list[FileResult]
) -> None:
    """Moves each upload's parts from the run's staging folder (<kind>/_upload=<i>/part-*) into its own folders,
    rejected then processed, each finished by `_SUCCESS`; a header-only part where an upload has no rows of a kind.
    Uploads are published in parallel (S3 requests are latency-bound); one failing leaves the others published."""
    headers = {
        "rejected": ",".join(transform.REJECTED_COLUMNS) + "\n",
        "processed": ",".join(transform.OUTPUT_COLUMNS) + "\n",
    }
    parts: dict[tuple[str, int], list[str]] = defaultdict(list)
    for uri in storage.list_files(staging):  # one listing for the whole run
        folder = uri.rsplit("/", 1)[0]
        kind, upload = folder.rsplit("/", 2)[-2:]
        if _is_part(uri) and upload.startswith("_upload="):
            parts[(kind, int(upload.removeprefix("_upload=")))].append(uri)

    def publish_one(i: int) -> None:
        entry = manifest.uploads[i]
        try:
            for kind, prefix in (("rejected", entry.rejected_prefix), ("processed", entry.output_prefix)):
                final = storage.join_uri(output_root, prefix)
                storage.delete_folder(final)  # leftovers of an earlier attempt never mix with this one
                mine = sorted(parts.get((kind, i), []))
                for n, part in enumerate(mine):
                    storage.move(part, storage.join_uri(final, f"part-{n:05d}.csv"))
                if not mine:  # no rows of this kind: a header-only file, as Spark would have written
                    storage.write_text(storage.join_uri(final, "part-00000.csv"), headers[kind], "text/csv")
                storage.write_text(storage.join_uri(final, "_SUCCESS"), "", "text/plain")
        except Exception as err:  # noqa: BLE001 - one upload's publishing failing leaves the others published
            results[i] = results[i].fail(f"{entry.key}: could not write output: {error_summary(err)}")

    storage.for_each(publish, publish_one)
    storage.delete_folder(staging)


def _is_part(uri: str) -> bool:
    name = uri.rsplit("/", 1)[-1]
    return name.startswith("part-") and not name.endswith(".crc")


def check_uploads(
    manifest: Manifest,
    data_root: str,
    read_head: Callable[[str, int], bytes] = storage.read_bytes,
    etag_matches: Callable[[str, str], bool | None] = storage.etag_matches,
) -> list[Layout | str]:
    """Per upload, in manifest order: its header layout, or why it cannot be processed. Two S3 requests an upload
    (version check, first bytes), uploads in parallel: a run of thousands is checked in seconds, not minutes."""
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
            if etag_matches(uri, entry.etag) is False:
                # Re-uploaded after this run was planned: these bytes belong to the newer upload, which is
                # recorded and processed on its own; processing them here would label them with the wrong version.
                return (
                    f"superseded: {entry.key} was uploaded again after this run was planned (etag {entry.etag} changed)"
                )
            return inspect_header(read_head(uri, HEADER_PROBE_BYTES), entry.key)
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
    date_formats: Sequence[str] = transform.DEFAULT_DATE_FORMATS,
    read_head: Callable[[str, int], bytes] = storage.read_bytes,
    etag_matches: Callable[[str, str], bool | None] = storage.etag_matches,
    arrow_max_bytes: int = ARROW_MAX_BYTES,
    ship_modules: bool = True,
) -> list[FileResult]:
    """Processes every upload of the manifest; returns one FileResult per upload, in manifest order.
    `arrow_max_bytes`: uploads up to this size go through the Arrow engine (-1: none do). `ship_modules`: send the
    job's modules to Spark's Python workers (not on Glue, which ships them to every node itself)."""
    results = [FileResult(entry) for entry in manifest.uploads]
    layouts: dict[int, Layout] = {}
    small: dict[int, Layout] = {}
    for i, found in enumerate(check_uploads(manifest, data_root, read_head, etag_matches)):
        if not isinstance(found, Layout):
            results[i] = results[i].fail(found)
        elif manifest.uploads[i].size <= arrow_max_bytes:
            small[i] = found
        else:
            layouts[i] = found

    if small:
        tasks = {
            i: arrow_job.UploadTask(
                manifest.uploads[i], data_root, output_root, layout.field_count, layout.positions, processing_date,
                tuple(date_formats),
            )
            for i, layout in small.items()
        }  # fmt: skip
        answers, left = _run_on_arrow(spark, tasks, ship_modules)
        for i, result in answers.items():
            results[i] = result
        layouts.update({i: small[i] for i in left})
    if layouts:
        try:
            _process(spark, manifest, data_root, output_root, layouts, results, processing_date, date_formats)
        except Exception as err:  # noqa: BLE001 - isolate: retry each upload alone
            LOG.warning("shared pass failed (%s); processing each upload alone", error_summary(err))
            for i, layout in layouts.items():
                results[i] = FileResult(manifest.uploads[i])
                try:
                    _process(
                        spark, manifest, data_root, output_root, {i: layout}, results, processing_date, date_formats
                    )
                except Exception as alone:  # noqa: BLE001
                    key = manifest.uploads[i].key
                    results[i] = results[i].fail(f"{key}: processing failed: {error_summary(alone)}")
    for r in results:
        LOG.info("%s: %s %s", r.entry.key, r.status, r.error or "")
    return results


def _run_on_arrow(
    spark: SparkSession, tasks: dict[int, arrow_job.UploadTask], ship_modules: bool
) -> tuple[dict[int, FileResult], list[int]]:
    """The Arrow engine's results by upload, and the uploads it could not process (left for the Spark plan). If the
    tasks' Spark job fails (a Python worker killed, for memory say), each upload is tried alone."""
    try:
        return dict(zip(tasks, run_in_tasks(spark, list(tasks.values()), ship_modules), strict=True)), []
    except Exception as err:  # noqa: BLE001 - isolate: each upload alone
        LOG.warning("Arrow tasks failed (%s); each upload alone", error_summary(err))
    answers: dict[int, FileResult] = {}
    left: list[int] = []
    for i, task in tasks.items():
        try:
            (answers[i],) = run_in_tasks(spark, [task], ship_modules)
        except Exception as alone:  # noqa: BLE001 - this upload goes through the Spark plan instead
            LOG.warning("%s: Arrow task failed (%s); Spark plan instead", task.entry.key, error_summary(alone))
            left.append(i)
    return answers, left


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


def run_in_tasks(spark: SparkSession, tasks: list[arrow_job.UploadTask], ship_modules: bool = True) -> list[FileResult]:
    """arrow_job on Spark's Python workers: uploads spread over a few tasks per core, results in `tasks` order."""
    sc = spark.sparkContext
    if ship_modules:  # local Spark: the workers import the job's modules from these copies
        for module in (arrow_job, arrow_csv, arrow_lines, arrow_rules, transform, storage, contract, errors):
            sc.addPyFile(module.__file__)
    groups = balanced_slices([t.entry.size for t in tasks], 4 * sc.defaultParallelism)
    answers = (
        sc.parallelize([[(i, tasks[i]) for i in g] for g in groups], len(groups))
        .flatMap(arrow_job.process_group)
        .collect()
    )
    results: list[FileResult | None] = [None] * len(tasks)
    for i, result in answers:
        results[i] = result
    return results  # type: ignore[return-value]


def _read_lines(spark: SparkSession, uris: list[str], layout: Layout, date_formats: Sequence[str]) -> DataFrame:
    """The files' lines, parsed and cleaned row by row (no shuffle): what the run caches."""
    lines = spark.read.text([spark_path(u) for u in uris]).select(
        F.col("_metadata.file_path").alias("_file_path"),
        F.col("_metadata.file_block_start").alias("_block_start"),
        # Straight on the scan: consecutive within a split, which is what line numbers are computed from.
        F.monotonically_increasing_id().alias("_row_id"),
        F.col("value"),
    )
    lines = lines.select(
        "_file_path",
        "_block_start",
        "_row_id",
        (F.btrim(F.col("value"), F.lit(" \t")) == "").alias("_blank"),
        # Bytes that are not UTF-8 do not survive a decode/encode round trip.
        (F.col("value").cast("binary") != F.encode(F.col("value"), "UTF-8")).alias("_bad_utf8"),
        "value",
    )
    return transform.clean(transform.parse_lines(lines, layout.field_count, dict(layout.positions)), date_formats)


def _process(
    spark: SparkSession,
    manifest: Manifest,
    data_root: str,
    output_root: str,
    layouts: dict[int, Layout],
    results: list[FileResult],
    processing_date: str,
    date_formats: Sequence[str],
) -> None:
    uploads = manifest.uploads
    by_layout: dict[Layout, list[int]] = defaultdict(list)
    for i, layout in sorted(layouts.items()):
        by_layout[layout].append(i)
    parts = [
        _read_lines(spark, [storage.join_uri(data_root, uploads[i].key) for i in idxs], layout, date_formats)
        for layout, idxs in by_layout.items()
    ]
    parsed = reduce(DataFrame.unionByName, parts).cache()
    summary = enriched = None
    clock = time.perf_counter()
    try:
        # Pass 1 (reads the files once, fills the cache): per text split, its rows (to number lines) and counts.
        corrupt = F.col(transform.CORRUPT_RECORD).isNotNull()
        blocks = (
            parsed.groupBy("_file_path", "_block_start")
            .agg(
                F.count(F.lit(1)).alias("n"),
                F.min("_row_id").alias("first"),
                F.sum(F.col("_blank").cast("long")).alias("blank"),
                F.sum((corrupt & ~F.col("_blank")).cast("long")).alias("rejected"),
                F.min(F.when(F.col("_bad_utf8"), F.col("_row_id"))).alias("first_bad"),
            )
            .collect()
        )
        LOG.info("pass 1 (read, parse, clean, cache): %.2fs", time.perf_counter() - clock)
        identity = {path_identity(storage.join_uri(data_root, uploads[i].key)): i for i in layouts}
        per_file: dict[int, list] = defaultdict(list)
        for b in blocks:
            i = identity.get(path_identity(b["_file_path"], encoded=True))
            if i is None:
                raise IngestError(f"Spark read {b['_file_path']}, which is not in the manifest")
            per_file[i].append(b)
        block_rows = []
        good: list[int] = []
        for i in layouts:
            base, blank, rejected, first_bad = 0, 0, 0, None
            for b in sorted(per_file.get(i, []), key=lambda b: b["_block_start"]):
                block_rows.append((b["_file_path"], b["_block_start"], b["first"], base, i, uploads[i].key))
                if first_bad is None and b["first_bad"] is not None:
                    first_bad = base + b["first_bad"] - b["first"] + 1
                base, blank, rejected = base + b["n"], blank + b["blank"], rejected + b["rejected"]
            if first_bad is not None:
                results[i] = results[i].fail(f"{uploads[i].key}: not valid UTF-8 (first bad bytes on line {first_bad})")
                continue
            results[i].rows_read = max(0, base - 1 - blank)  # line 1 is the header; blank lines are not rows
            results[i].rows_rejected = rejected
            good.append(i)
        if not good:
            return
        block_df = spark.createDataFrame(
            block_rows,
            "_file_path string, _block_start long, _first long, _base long, _upload int, source_file string",
        )
        line_number = F.col("_base") + F.col("_row_id") - F.col("_first") + 1
        lines = (
            parsed.join(F.broadcast(block_df), ["_file_path", "_block_start"])
            .withColumn(transform.LINE_NUMBER, line_number)
            .filter((F.col(transform.LINE_NUMBER) > 1) & ~F.col("_blank"))  # line 1 is the header
        )

        rows = lines.filter(F.col("_upload").isin(good) & ~corrupt).select(
            "source_file", transform.LINE_NUMBER, *transform.CLEAN_COLUMNS
        )
        summary = transform.duplicate_summary(rows).cache()

        # Pass 2 (cache + one narrow shuffle): processed rows, duplicates and issues per upload.
        clock = time.perf_counter()
        duplicate_id_rows = F.when(F.col("id").isNotNull() & (F.col("rows") > 1), F.col("rows")).otherwise(0)
        row_issues = [k for k in transform.ISSUE_KINDS if k != transform.DUPLICATE_ID]
        per_file = {
            r["source_file"]: r
            for r in summary.groupBy("source_file")
            .agg(
                F.sum("rows").alias("processed"),
                F.sum("duplicates").alias("dups"),
                F.sum(duplicate_id_rows).alias(transform.DUPLICATE_ID),
                *[F.sum(k).alias(k) for k in row_issues],
            )
            .collect()
        }
        LOG.info("pass 2 (duplicates, issues): %.2fs", time.perf_counter() - clock)
        for i in good:
            s = per_file.get(uploads[i].key)
            r = results[i]
            if s is not None:
                r.rows_processed = s["processed"]
                r.duplicates_removed = s["dups"]
                r.quality_issues = {k: s[k] for k in transform.ISSUE_KINDS if s[k]}
            if r.rows_read != r.rows_processed + r.rows_rejected + r.duplicates_removed:
                results[i] = r.fail(
                    f"{r.entry.key}: internal error: rows read ({r.rows_read}) != processed ({r.rows_processed})"
                    f" + rejected ({r.rows_rejected}) + duplicates removed ({r.duplicates_removed})"
                )

        # Publish: rejected rows first, then the processed CSV, whose _SUCCESS marks the upload finished.
        clock = time.perf_counter()
        field_count = {i: layouts[i].field_count for i in layouts}
        publish = [i for i in good if results[i].status == "processed"]
        if len(publish) > 1:
            # Several uploads: one rules pass and ONE write per output kind for the whole run, into a staging
            # folder partitioned by upload; then each upload's part is moved to its own folder. Two Spark jobs per
            # run instead of two per upload.
            _publish_together(
                spark,
                transform.enrich(rows, summary, processing_date),
                lines,
                publish,
                manifest,
                output_root,
                field_count,
                results,
            )
        elif publish:
            # One upload: written straight into its folders (Spark's committer writes _SUCCESS last).
            (i,) = publish
            entry = uploads[i]
            try:
                rejected = transform.rejected_rows(lines.filter(F.col("_upload") == i), field_count[i])
                write_csv(
                    rejected.coalesce(1).sortWithinPartitions(transform.LINE_NUMBER),
                    storage.join_uri(output_root, entry.rejected_prefix),
                )
                mine = F.col("source_file") == entry.key
                out = transform.enrich(rows.filter(mine), summary.filter(mine), processing_date)
                out = out.coalesce(max(1, math.ceil(results[i].rows_processed / ROWS_PER_PART)))
                write_csv(
                    transform.output_rows(out.sortWithinPartitions(transform.LINE_NUMBER)),
                    storage.join_uri(output_root, entry.output_prefix),
                )
            except Exception as err:  # noqa: BLE001 - a failed write fails the upload with the reason
                results[i] = results[i].fail(f"{entry.key}: could not write output: {error_summary(err)}")
        LOG.info("writes: %.2fs", time.perf_counter() - clock)
    finally:
        if enriched is not None:
            enriched.unpersist()
        if summary is not None:
            summary.unpersist()
        parsed.unpersist()
