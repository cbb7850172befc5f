"""The entry script end to end on local files: manifest -> outputs -> stats (the demo's samples as input)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from support import VECTORS, read_output, stage_run

import job
from csv_ingest.contract.errors import ManifestError, RunFailed

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
NULLABLE = {"error", "output", "rejectedOutput"}


def assert_same_shape(doc, vector, where="stats"):
    """Same keys and JSON types as the vector (nullable fields may be null); issue maps are name -> int."""
    if isinstance(vector, dict) and where.endswith("qualityIssues"):
        assert isinstance(doc, dict), where
        assert all(isinstance(k, str) and type(v) is int for k, v in doc.items()), where
        return
    if isinstance(vector, dict):
        assert isinstance(doc, dict), where
        assert sorted(doc) == sorted(vector), f"{where}: keys {sorted(doc)}"
        for k, v in vector.items():
            if k in NULLABLE and doc[k] is None:
                continue
            assert_same_shape(doc[k], v, f"{where}.{k}")
    elif isinstance(vector, list):
        assert isinstance(doc, list), where
        for i, item in enumerate(doc):
            assert_same_shape(item, vector[0], f"{where}[{i}]")
    elif vector is None:
        assert doc is None or isinstance(doc, str), where
    else:
        assert type(doc) is type(vector), f"{where}: {type(doc).__name__} != {type(vector).__name__}"


def argv(staged, run_key="RUN1"):
    return [
        "job.py",
        "--JOB_NAME", "csv-ingest",
        "--JOB_RUN_ID", "jr_123",
        "--manifest_uri", staged["manifest_uri"],
        "--run_key", run_key,
        "--data_root", staged["data_root"],
        "--output_root", staged["output_root"],
        "--enable-metrics", "true",
    ]  # fmt: skip


def test_job_processes_the_samples_end_to_end(spark, tmp_path):
    staged = stage_run(tmp_path, {p.name: p.read_bytes() for p in sorted(SAMPLES.glob("*.csv"))})
    returned = job.main(argv(staged))

    summary = (staged["out"] / "stats" / "runs" / "RUN1.json").read_text(encoding="utf-8")
    assert summary.count("\n") == 1  # one JSON object on one line
    stats = json.loads(summary)
    assert stats == returned
    assert_same_shape(stats, json.loads((VECTORS / "stats.v1.json").read_text(encoding="utf-8")))
    assert stats["totals"] == {
        "files": 4,
        "filesProcessed": 4,
        "filesFailed": 0,
        "rowsRead": 19,
        "rowsProcessed": 17,
        "rowsRejected": 1,
        "duplicatesRemoved": 1,
        "qualityIssues": {
            "duplicate_id": 2,
            "invalid_amount": 1,
            "invalid_date": 2,
            "invalid_email": 1,
            "missing_amount": 1,
            "missing_email": 1,
        },
    }
    for f in stats["files"]:
        stem = f["key"].removeprefix("input/").removesuffix(".csv")
        assert f["output"].startswith(f"s3://bucket/processed/{stem}/v=")
        rows = read_output(staged["out"] / f["output"].removeprefix("s3://bucket/"))
        assert len(rows) - 1 == f["rowsProcessed"]
        rejected = read_output(staged["out"] / f["rejectedOutput"].removeprefix("s3://bucket/"))
        assert len(rejected) - 1 == f["rowsRejected"]
    east = next(f for f in stats["files"] if f["key"] == "input/orders_east.csv")
    rejected = read_output(staged["out"] / east["rejectedOutput"].removeprefix("s3://bucket/"))
    assert rejected[1][:3] == ["input/orders_east.csv", "4", "expected 6 fields as in the header, found 4"]
    # Per-file stats as JSON Lines: one object per upload, each on its own line, with the run's key and date.
    lines = (staged["out"] / "stats/files/ingest_date=2026-04-01/RUN1.jsonl").read_text(encoding="utf-8")
    per_file = [json.loads(line) for line in lines.splitlines()]
    assert [(f["runKey"], f["key"], f["rowsRead"]) for f in per_file] == [
        ("RUN1", f["key"], f["rowsRead"]) for f in stats["files"]
    ]
    assert {f["processingDate"] for f in per_file} == {stats["processingDate"]}


def test_job_writes_stats_then_fails_when_nothing_could_be_processed(spark, tmp_path):
    staged = stage_run(tmp_path, {"a.csv": b"", "b.csv": b"id,name\n1,x\n"})
    with pytest.raises(RunFailed, match=r"no upload could be processed: input/a\.csv: file is empty"):
        job.main(argv(staged))
    stats = json.loads((staged["out"] / "stats" / "runs" / "RUN1.json").read_text(encoding="utf-8"))
    assert [(f["status"], f["error"]) for f in stats["files"]] == [
        ("failed", "input/a.csv: file is empty (no header row)"),
        ("failed", "input/b.csv: missing required column(s): email, date, amount, status (header: id, name)"),
    ]


def test_job_refuses_a_manifest_of_another_run(tmp_path):
    staged = stage_run(tmp_path, {"a.csv": b"id\n"})
    with pytest.raises(ManifestError, match="manifest runKey 'RUN1' != --run_key 'OTHER'"):
        job.main(argv(staged, run_key="OTHER"))


def test_arguments_without_glue_tolerate_glue_extras():
    given = ["--JOB_NAME", "j", "--manifest_uri", "m", "--run_key", "k", "--data_root", "d/", "--output_root", "o/"]
    args = job.parse_arguments(["job.py", *given, "--date_formats", "yyyy-MM-dd", "--fallback_encoding", "cp1252"])
    assert args == job.JobArguments("m", "k", "d/", "o/", ("yyyy-MM-dd",), "cp1252")


def test_an_unknown_fallback_encoding_is_refused_before_anything_is_read(tmp_path):
    staged = stage_run(tmp_path, {"a.csv": b"id\n"})
    with pytest.raises(ManifestError, match="--fallback_encoding 'latin-9x' is not an encoding"):
        job.main([*argv(staged), "--fallback_encoding", "latin-9x"])


def test_arguments_on_glue_ask_for_optional_ones_only_when_given(monkeypatch):
    asked = []

    def get_resolved_options(args, names):
        asked.append(list(names))
        return {n: args[args.index(f"--{n}") + 1] for n in names}

    utils = types.ModuleType("awsglue.utils")
    utils.getResolvedOptions = get_resolved_options
    monkeypatch.setitem(sys.modules, "awsglue", types.ModuleType("awsglue"))
    monkeypatch.setitem(sys.modules, "awsglue.utils", utils)
    base = ["job.py", "--manifest_uri", "m", "--run_key", "k", "--data_root", "d/", "--output_root", "o/"]
    assert job.parse_arguments(base).date_formats == ("dd-MM-yyyy", "yyyy-MM-dd")
    assert job.parse_arguments([*base, "--date_formats", "dd/MM/yyyy"]).date_formats == ("dd/MM/yyyy",)
    assert asked == [
        ["manifest_uri", "run_key", "data_root", "output_root"],
        ["manifest_uri", "run_key", "data_root", "output_root", "date_formats"],
    ]


@pytest.mark.parametrize(("on_glue", "shipped"), [(False, True), (True, False)])
def test_the_modules_are_shipped_to_spark_workers_only_off_glue(tmp_path, monkeypatch, on_glue, shipped):
    # Glue puts glue/*.py on every node (--extra-py-files); local Spark's workers need them sent.
    staged = stage_run(tmp_path, {"a.csv": b"id\n"})
    seen = {}

    def run_ingest(*args, ship_modules, **kwargs):
        seen["ship_modules"] = ship_modules
        return []

    monkeypatch.setattr(job, "run_ingest", run_ingest)
    job.execute(None, job.parse_arguments(argv(staged)), on_glue=on_glue)
    assert seen == {"ship_modules": shipped}
