"""Entry script of the CSV ingest Glue job (Glue 5.0), also runnable on plain local Spark:

    .venv/bin/python glue/job.py --manifest_uri file:///.../m.json --run_key K \\
        --data_root file:///stage/ --output_root file:///out/

It only parses arguments, reads the manifest, runs the ingest and writes the stats. It exits non-zero only when
the manifest cannot be read, the stats cannot be written, or no upload could be processed (after writing stats).
"""

from __future__ import annotations

import argparse
import codecs
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

# Glue ships this file alone and the modules as extra-py-files; locally, make the sibling modules importable.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from csv_ingest.contract.documents import PROCESSED, build_stats, file_stats_lines, parse_manifest
from csv_ingest.contract.errors import ManifestError, RunFailed
from csv_ingest.engine import rules
from csv_ingest.ingest import run_ingest
from csv_ingest.io import storage

REQUIRED_ARGUMENTS = ("manifest_uri", "run_key", "data_root", "output_root")
# date_formats: comma-separated, e.g. "dd-MM-yyyy,yyyy-MM-dd"; fallback_encoding: how to read records that are not
# UTF-8 (e.g. cp1252; without it they are rejected with their line numbers).
OPTIONAL_ARGUMENTS = ("date_formats", "fallback_encoding")

LOG = logging.getLogger("csv_ingest")


@dataclass(frozen=True)
class JobArguments:
    manifest_uri: str
    run_key: str
    data_root: str
    output_root: str
    date_formats: tuple[str, ...] = rules.DEFAULT_DATE_FORMATS
    fallback_encoding: str | None = None


def _has_awsglue() -> bool:
    try:
        import awsglue  # noqa: F401
    except ImportError:
        return False
    return True


def parse_arguments(argv: Sequence[str]) -> JobArguments:
    """Glue-style `--name value` arguments; unknown ones (--JOB_NAME, --JOB_RUN_ID, ...) are tolerated."""
    if _has_awsglue():
        from awsglue.utils import getResolvedOptions

        # getResolvedOptions makes every listed option required: list the optional ones only when given.
        names = [*REQUIRED_ARGUMENTS, *[n for n in OPTIONAL_ARGUMENTS if f"--{n}" in argv]]
        values = getResolvedOptions(list(argv), names)
    else:
        parser = argparse.ArgumentParser(prog="job.py", allow_abbrev=False)
        for name in REQUIRED_ARGUMENTS:
            parser.add_argument(f"--{name}", required=True)
        for name in OPTIONAL_ARGUMENTS:
            parser.add_argument(f"--{name}")
        known, _unknown = parser.parse_known_args(list(argv[1:]))
        values = vars(known)
    formats = values.get("date_formats")
    return JobArguments(
        manifest_uri=values["manifest_uri"],
        run_key=values["run_key"],
        data_root=values["data_root"],
        output_root=values["output_root"],
        date_formats=tuple(f.strip() for f in formats.split(",") if f.strip())
        if formats
        else rules.DEFAULT_DATE_FORMATS,
        fallback_encoding=values.get("fallback_encoding") or None,
    )


def run_timestamp(now: datetime | None = None) -> str:
    """The run's processing date: ISO-8601 UTC with milliseconds, as in the stats."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def execute(spark, args: JobArguments, processing_date: str | None = None, on_glue: bool = False) -> dict:
    """Reads the manifest, runs the ingest, writes the stats; raises RunFailed (after the stats) if nothing worked.
    `on_glue`: Glue has shipped the job's modules to every node (--extra-py-files)."""
    for pattern in args.date_formats:
        rules.date_format_regex(pattern)  # a bad --date_formats fails before anything is read
    if args.fallback_encoding:
        try:
            codecs.lookup(args.fallback_encoding)
        except LookupError as err:
            raise ManifestError(f"--fallback_encoding {args.fallback_encoding!r} is not an encoding") from err
    try:
        manifest = parse_manifest(storage.read_text(args.manifest_uri), args.manifest_uri)
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"{args.manifest_uri}: cannot read the manifest: {err}") from err
    if manifest.run_key != args.run_key:
        raise ManifestError(f"{args.manifest_uri}: manifest runKey {manifest.run_key!r} != --run_key {args.run_key!r}")
    processing_date = processing_date or run_timestamp()
    roots = args.data_root, args.output_root
    results = run_ingest(
        spark, manifest, *roots, processing_date, args.date_formats, ship_modules=not on_glue,
        fallback_encoding=args.fallback_encoding,
    )  # fmt: skip
    stats = build_stats(manifest, processing_date, results)
    if manifest.file_stats_key:  # per-file stats first: the run summary is what the recorder waits for
        file_stats_uri = storage.join_uri(args.output_root, manifest.file_stats_key)
        storage.write_text(file_stats_uri, file_stats_lines(stats), "application/x-ndjson")
    stats_uri = storage.join_uri(args.output_root, manifest.stats_key)
    storage.write_text(stats_uri, json.dumps(stats, ensure_ascii=False) + "\n")
    LOG.info("stats written to %s: %s", stats_uri, json.dumps(stats["totals"]))
    if results and not any(r.status == PROCESSED for r in results):
        reasons = "; ".join(r.error or "?" for r in results)
        raise RunFailed(f"run {manifest.run_key}: no upload could be processed: {reasons}")
    return stats


def main(argv: Sequence[str]) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = parse_arguments(argv)
    if _has_awsglue():
        from awsglue.context import GlueContext
        from awsglue.job import Job
        from pyspark.context import SparkContext

        glue_context = GlueContext(SparkContext.getOrCreate())
        job = Job(glue_context)
        if "--JOB_NAME" in argv:
            from awsglue.utils import getResolvedOptions

            job.init(getResolvedOptions(list(argv), ["JOB_NAME"])["JOB_NAME"], {})
        from csv_ingest.io.session import apply_job_settings

        stats = execute(apply_job_settings(glue_context.spark_session), args, on_glue=True)
        job.commit()
        return stats
    from csv_ingest.io.session import local_spark

    return execute(local_spark("csv-ingest-job"), args)


if __name__ == "__main__":
    main(sys.argv)
