"""Per-upload isolation when things fail: one upload's failure never takes the others down."""

from __future__ import annotations

from support import HEADER, PROCESSING_DATE, read_output, stage_run

from csv_ingest import ingest
from csv_ingest.contract import output
from csv_ingest.engine import rules, worker
from csv_ingest.io import storage

GOOD = HEADER + b"1,Ann Lee,ann@example.com,01-04-2025,10,active\n"


def run(spark, staged):
    roots = (staged["data_root"], staged["output_root"])
    results = ingest.run_ingest(spark, staged["manifest"], *roots, PROCESSING_DATE)
    return {r.entry.key: r for r in results}


def upload_tasks(staged):
    layout = ingest.inspect_header(GOOD, "any")
    return [
        (i, worker.UploadTask(e, staged["data_root"], staged["output_root"], layout.field_count, layout.positions,
                              PROCESSING_DATE, rules.DEFAULT_DATE_FORMATS))
        for i, e in enumerate(staged["manifest"].uploads)
    ]  # fmt: skip


def test_a_failing_write_fails_only_that_upload(tmp_path, monkeypatch):
    staged = stage_run(tmp_path, {"a.csv": GOOD, "b.csv": GOOD})
    real_write = storage.write_bytes

    def write_bytes(uri, data, content_type):
        if "/processed/b/" in uri:
            raise OSError("disk full")
        real_write(uri, data, content_type)

    monkeypatch.setattr(storage, "write_bytes", write_bytes)
    results = {r.entry.key: r for _, r in worker.process_group(upload_tasks(staged))}
    assert (results["input/b.csv"].status, results["input/b.csv"].error) == (
        "failed",
        "input/b.csv: could not write output: OSError: disk full",
    )
    assert results["input/a.csv"].status == "processed"
    assert len(read_output(next((staged["out"] / "processed" / "a").glob("v=*")))) == 2


def many_rows(n):
    return HEADER + b"".join(f"{i},Ann Lee,ann@example.com,01-04-2025,{i}.5,active\n".encode() for i in range(1, n + 1))


def test_a_big_upload_writes_its_parquet_beside_its_csv_with_the_same_files(tmp_path, monkeypatch):
    # More rows than a chunk: the CSV's chunks are made on several threads while the Parquet file is written.
    staged = stage_run(tmp_path, {"a.csv": many_rows(9)})
    (_, task), *_ = upload_tasks(staged)
    assert worker.process_upload(task).status == "processed"
    alone = {p.relative_to(staged["out"]): p.read_bytes() for p in sorted(staged["out"].rglob("*")) if p.is_file()}
    monkeypatch.setattr(output, "CHUNK_ROWS", 2)
    assert worker.process_upload(task).status == "processed"
    together = {p.relative_to(staged["out"]): p.read_bytes() for p in sorted(staged["out"].rglob("*")) if p.is_file()}
    assert together == alone
    assert len(read_output(next((staged["out"] / "processed" / "a").glob("v=*")))) == 1 + 9


def test_a_big_uploads_failed_parquet_write_leaves_no_processed_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(output, "CHUNK_ROWS", 2)
    staged = stage_run(tmp_path, {"a.csv": many_rows(9)})
    real_write = storage.write_streamed

    def write_streamed(uri, write, content_type):
        if uri.endswith(".parquet"):
            raise OSError("disk full")
        real_write(uri, write, content_type)

    monkeypatch.setattr(storage, "write_streamed", write_streamed)
    (_, task), *_ = upload_tasks(staged)
    result = worker.process_upload(task)
    assert (result.status, result.error) == ("failed", "input/a.csv: could not write output: OSError: disk full")
    assert not [p for p in (staged["out"] / "processed").rglob("*") if p.is_file()]


def test_an_unexpected_error_fails_only_that_upload(tmp_path, monkeypatch):
    # A bug the rules hit on one upload's rows: small uploads go through the rules together (a batch), and the
    # failure of the batch must fail only the upload that causes it.
    bad_rows = HEADER + b"1,Bug Trigger,ann@example.com,01-04-2025,10,active\n"
    staged = stage_run(tmp_path, {"a.csv": GOOD, "bad.csv": bad_rows, "c.csv": GOOD})
    real_clean = rules.clean

    def clean(raw, *args, **kwargs):
        if "Bug Trigger" in raw["name"].to_pylist():
            raise RuntimeError("a bug")
        return real_clean(raw, *args, **kwargs)

    monkeypatch.setattr(rules, "clean", clean)
    results = {r.entry.key: r for _, r in worker.process_group(upload_tasks(staged))}
    assert (results["input/bad.csv"].status, results["input/bad.csv"].error) == (
        "failed",
        "input/bad.csv: processing failed: RuntimeError: a bug",
    )
    assert (results["input/a.csv"].status, results["input/a.csv"].rows_processed) == ("processed", 1)
    assert (results["input/c.csv"].status, results["input/c.csv"].rows_processed) == ("processed", 1)


def test_reads_each_upload_once(tmp_path, monkeypatch):
    staged = stage_run(tmp_path, {"a.csv": GOOD + GOOD.split(b"\n", 1)[1] * 3})
    reads = []
    real_read = storage.read_bytes
    monkeypatch.setattr(storage, "read_bytes", lambda uri, **kw: reads.append(uri) or real_read(uri, **kw))
    ((_, result),) = worker.process_group(upload_tasks(staged))
    assert (result.status, result.rows_read, result.rows_processed, result.duplicates_removed) == ("processed", 4, 1, 3)
    assert len(reads) == 1


def test_an_upload_gone_before_its_task_runs_fails_alone_through_spark(spark, tmp_path, monkeypatch):
    # Through run_ingest and Spark's Python workers: the object is checked, then deleted before the task reads it.
    staged = stage_run(tmp_path, {"a.csv": GOOD, "gone.csv": GOOD})
    real_check = ingest.check_uploads

    def check_then_delete(*args, **kwargs):
        found = real_check(*args, **kwargs)
        (tmp_path / "stage" / "input" / "gone.csv").unlink()
        return found

    monkeypatch.setattr(ingest, "check_uploads", check_then_delete)
    results = run(spark, staged)
    assert results["input/gone.csv"].status == "failed"
    assert results["input/gone.csv"].error.startswith("input/gone.csv: object not found at ")
    assert (results["input/a.csv"].status, results["input/a.csv"].rows_processed) == ("processed", 1)


def test_an_upload_overwritten_after_the_run_was_planned_is_reported_superseded(spark, tmp_path):
    staged = stage_run(tmp_path, {"a.csv": GOOD, "b.csv": GOOD})
    (tmp_path / "stage" / "input" / "b.csv").write_bytes(GOOD + b"2,Bob Ray,bob@example.com,02-04-2025,20,active\n")

    results = run(spark, staged)

    assert results["input/b.csv"].status == "failed"
    assert results["input/b.csv"].error.startswith("superseded: input/b.csv was uploaded again after this run")
    assert results["input/a.csv"].status == "processed"
    assert not (staged["out"] / "processed" / "b").exists()


def test_keys_with_uri_characters_are_read_as_named_under_a_root_with_a_space(spark, tmp_path):
    # "#", "?" and "%" are legal in S3 keys and match input/*.csv; a URI parser would cut or decode them.
    names = ["r#1.csv", "q?x.csv", "p%41.csv", "s p.csv"]
    staged = stage_run(tmp_path / "my runs", {name: GOOD for name in names})

    results = run(spark, staged)

    assert {k: (r.status, r.error, r.rows_processed) for k, r in results.items()} == {
        f"input/{name}": ("processed", None, 1) for name in names
    }
    for i, name in enumerate(names):
        rows = read_output(staged["out"] / "processed" / name.removesuffix(".csv") / f"v=T{i}")
        assert (rows[1][0], rows[1][-1]) == ("1", f"input/{name}")


def test_when_the_tasks_fail_each_upload_is_tried_alone_and_only_the_culprit_fails(spark, tmp_path, monkeypatch):
    # What a Python worker killed for memory looks like from the driver: the Spark job of the Arrow tasks fails.
    staged = stage_run(tmp_path, {"a.csv": GOOD, "boom.csv": GOOD, "c.csv": GOOD})
    real_tasks = ingest.run_in_tasks
    attempts = []

    def run_in_tasks(spark, tasks, *args):
        attempts.append([t.entry.key for t in tasks])
        if any(t.entry.key == "input/boom.csv" for t in tasks):
            raise RuntimeError("Python worker exited unexpectedly (crashed)")
        return real_tasks(spark, tasks, *args)

    monkeypatch.setattr(ingest, "run_in_tasks", run_in_tasks)
    results = run(spark, staged)
    assert attempts == [
        ["input/a.csv", "input/boom.csv", "input/c.csv"],
        ["input/a.csv"],
        ["input/boom.csv"],
        ["input/c.csv"],
    ]
    assert {k: (r.status, r.rows_processed) for k, r in results.items()} == {
        "input/a.csv": ("processed", 1),
        "input/boom.csv": ("failed", 0),
        "input/c.csv": ("processed", 1),
    }
    assert results["input/boom.csv"].error == (
        "input/boom.csv: processing failed: RuntimeError: Python worker exited unexpectedly (crashed)"
    )


def test_a_line_with_thousands_of_fields_is_a_rejected_row_not_a_failed_upload(tmp_path):
    wide = GOOD + b"2" + b",x" * 20480 + b"\n"
    staged = stage_run(tmp_path, {"wide.csv": wide})
    ((_, result),) = worker.process_group(upload_tasks(staged))
    assert (result.status, result.rows_read, result.rows_processed, result.rows_rejected) == ("processed", 2, 1, 1)
    rejected = read_output(next((staged["out"] / "rejected" / "wide").glob("v=*")))
    assert rejected[1][:3] == ["input/wide.csv", "3", "expected 6 fields as in the header, found 20481"]
