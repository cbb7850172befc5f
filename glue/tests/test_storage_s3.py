"""The job's S3 side (what only runs on AWS otherwise), on moto's in-process S3: reads, version checks, listings past
one page, batched deletes, moves, the run's parallel publishing, and one shared client for all of it."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import replace

import boto3
import pytest
from moto import mock_aws

from csv_ingest import ingest
from csv_ingest.contract.documents import Manifest, parse_manifest
from csv_ingest.io import storage

BUCKET = "data-bucket"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        storage._s3_client.cache_clear()  # the job's client must be made inside the mock
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client
    storage._s3_client.cache_clear()


def uri(key: str) -> str:
    return f"s3://{BUCKET}/{key}"


def put(client, key: str, body: bytes = b"x") -> None:
    client.put_object(Bucket=BUCKET, Key=key, Body=body)


def test_read_bytes_whole_range_empty_and_missing(s3):
    put(s3, "input/a.csv", b"id,name\n1,Ann\n")
    put(s3, "input/empty.csv", b"")
    assert storage.read_bytes(uri("input/a.csv")) == b"id,name\n1,Ann\n"
    assert storage.read_bytes(uri("input/a.csv"), 4) == b"id,n"
    assert storage.read_bytes(uri("input/empty.csv"), 64) == b""  # S3 answers 416 InvalidRange
    with pytest.raises(FileNotFoundError, match=re.escape("no such object: s3://data-bucket/input/gone.csv")):
        storage.read_bytes(uri("input/gone.csv"), 64)


def test_keys_with_uri_characters_are_used_as_they_are(s3):
    key = "input/r#1 %41?x.csv"  # legal S3 key: nothing may be cut off as a fragment or query, or decoded
    put(s3, key, b"id\n1\n")
    assert storage.read_bytes(uri(key)) == b"id\n1\n"
    assert storage.etag_matches(uri(key), hashlib.md5(b"id\n1\n", usedforsecurity=False).hexdigest()) is True
    storage.move(uri(key), uri("processed/r#1 %41?x/part-00000.csv"))
    assert storage.list_files(uri("processed/")) == [uri("processed/r#1 %41?x/part-00000.csv")]
    storage.delete_folder(uri("processed/r#1 %41?x/"))
    assert storage.list_files(uri("processed/")) == []


def test_etag_matches_the_current_version_only(s3):
    put(s3, "input/a.csv", b"v1")
    v1 = hashlib.md5(b"v1", usedforsecurity=False).hexdigest()
    assert storage.etag_matches(uri("input/a.csv"), f'"{v1}"') is True
    put(s3, "input/a.csv", b"v2")
    assert storage.etag_matches(uri("input/a.csv"), v1) is False
    with pytest.raises(FileNotFoundError):
        storage.etag_matches(uri("input/gone.csv"), v1)


def test_write_text_then_read_text(s3):
    storage.write_text(uri("processed/stats/R.json"), '{"ok": "é"}\n')
    assert storage.read_text(uri("processed/stats/R.json")) == '{"ok": "é"}\n'
    head = s3.head_object(Bucket=BUCKET, Key="processed/stats/R.json")
    assert head["ContentType"] == "application/json"


def test_list_files_pages_past_1000_and_stays_in_its_folder(s3):
    for n in range(1005):
        put(s3, f"processed/_staging/R/processed/_upload={n % 3}/part-{n:05d}.csv")
    put(s3, "processed/_staging/R2/other.csv")  # a sibling whose name starts the same
    listed = storage.list_files(uri("processed/_staging/R/"))
    assert len(listed) == 1005
    assert all(u.startswith("s3://data-bucket/processed/_staging/R/") for u in listed)


def test_delete_folder_deletes_in_batches_and_spares_siblings(s3):
    for n in range(1005):
        put(s3, f"out/a/{n}.csv")
    put(s3, "out/ab/keep.csv")
    storage.delete_folder(uri("out/a/"))
    assert storage.list_files(uri("out/a/")) == []
    assert storage.list_files(uri("out/ab/")) == [uri("out/ab/keep.csv")]


def test_move_copies_then_deletes(s3):
    put(s3, "stage/part-0.csv", b"id\n1\n")
    storage.move(uri("stage/part-0.csv"), uri("processed/a/v=1/part-00000.csv"))
    assert storage.read_bytes(uri("processed/a/v=1/part-00000.csv")) == b"id\n1\n"
    assert storage.list_files(uri("stage/")) == []


def test_one_client_serves_every_request(s3, monkeypatch):
    made = []
    real_client = boto3.session.Session.client

    def counting_client(self, *args, **kwargs):
        made.append(args)
        return real_client(self, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "client", counting_client)
    storage._s3_client.cache_clear()
    for n in range(20):
        storage.write_text(uri(f"k/{n}.json"), "{}")
        storage.read_bytes(uri(f"k/{n}.json"), 2)
        storage.etag_matches(uri(f"k/{n}.json"), "0")
    storage.delete_folder(uri("k/"))
    assert len(made) == 1


def manifest(n: int) -> Manifest:
    uploads = [
        {
            "uploadId": f"{BUCKET}/input/f{i}.csv@T",
            "key": f"input/f{i}.csv",
            "versionId": None,
            "etag": "0" * 32,
            "lastModified": "2026-04-01T09:00:00.000Z",
            "size": 1,
            "outputPrefix": f"processed/f{i}/v=T/",
            "rejectedPrefix": f"rejected/f{i}/v=T/",
            "parquetPrefix": f"parquet/ingest_date=2026-04-01/f{i}/v=T/",
        }
        for i in range(n)
    ]
    doc = {
        "format": "csv-ingest-manifest/1",
        "runKey": "R",
        "createdAt": "2026-04-01T10:00:00.000Z",
        "bucket": BUCKET,
        "statsKey": "stats/runs/R.json",
        "uploads": uploads,
    }
    return parse_manifest(json.dumps(doc), "test")


def test_checking_a_run_on_s3_names_each_uploads_problem(s3):
    header = b"id,name,email,date,amount,status\n1,Ann,a@example.com,01-04-2025,10,active\n"
    bodies = {0: header, 1: b"id,name\n1,Ann\n", 2: header, 4: b""}  # f3 is never uploaded
    for i, body in bodies.items():
        put(s3, f"input/f{i}.csv", body)
    etags = {i: hashlib.md5(body, usedforsecurity=False).hexdigest() for i, body in bodies.items()}
    etags[2] = "0" * 32  # f2 was overwritten after the run was planned: S3's etag is no longer the manifest's
    run = manifest(5)
    run = replace(run, uploads=tuple(replace(u, etag=etags.get(i, u.etag)) for i, u in enumerate(run.uploads)))

    found = ingest.check_uploads(run, uri(""))

    assert isinstance(found[0], ingest.Layout)
    assert found[1] == "input/f1.csv: missing required column(s): email, date, amount, status (header: id, name)"
    assert found[2].startswith("superseded: input/f2.csv was uploaded again after this run was planned")
    assert found[3] == "input/f3.csv: object not found at s3://data-bucket/input/f3.csv"
    assert found[4] == "input/f4.csv: file is empty (no header row)"


def test_for_each_keeps_order_overlaps_the_work_and_raises_after_all_finished():
    active, peak, lock = [0], [0], threading.Lock()

    def work(n: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
        return n * n

    assert storage.for_each(range(40), work, workers=8) == [n * n for n in range(40)]
    assert 1 < peak[0] <= 8

    finished = []

    def failing(n: int) -> None:
        time.sleep(0.01)
        finished.append(n)
        if n == 3:
            raise ValueError("item 3")

    with pytest.raises(ValueError, match="item 3"):
        storage.for_each(range(10), failing, workers=4)
    assert sorted(finished) == list(range(10))


def test_write_streamed_uploads_what_the_writer_produced(s3):
    def write(handle):
        for i in range(3):
            handle.write(f"part {i}\n".encode() * 1000)

    storage.write_streamed(uri("processed/x/part-00000.csv"), write, "text/csv")
    got = s3.get_object(Bucket=BUCKET, Key="processed/x/part-00000.csv")
    assert got["Body"].read() == b"".join(f"part {i}\n".encode() * 1000 for i in range(3))
    assert got["ContentType"] == "text/csv"


def test_the_engine_processes_an_upload_on_s3(s3):
    from csv_ingest.engine import rules, worker

    body = b"id,name,email,date,amount,status\n1,ann lee,a@example.com,01-04-2025,10,active\n2,b\n"
    entry = replace(manifest(1).uploads[0], etag=hashlib.md5(body, usedforsecurity=False).hexdigest())
    put(s3, entry.key, body)
    layout = ingest.inspect_header(body, entry.key)
    task = worker.UploadTask(
        entry, f"s3://{BUCKET}/", f"s3://{BUCKET}/", layout.field_count, layout.positions, "2026-04-01T10:00:00.000Z",
        rules.DEFAULT_DATE_FORMATS,
    )  # fmt: skip
    result = worker.process_upload(task)
    assert (result.status, result.rows_read, result.rows_processed, result.rows_rejected) == ("processed", 2, 1, 1)
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"] if o["Key"] != entry.key)
    assert listed == sorted(
        [
            f"{prefix}{name}"
            for prefix in (entry.output_prefix, entry.rejected_prefix)
            for name in ("part-00000.csv", "_SUCCESS")
        ]
        + [f"{entry.parquet_prefix}part-00000.parquet", f"{entry.parquet_prefix}_SUCCESS"]
    )
    text = s3.get_object(Bucket=BUCKET, Key=f"{entry.output_prefix}part-00000.csv")["Body"].read().decode()
    assert text.splitlines()[1] == (
        "1,Ann Lee,a@example.com,true,2025-04-01,10.0,low,active,10.0,,2026-04-01 10:00:00.000,input/f0.csv"
    )


def test_read_bytes_if_etag_refuses_another_version(s3):
    put(s3, "input/a.csv", b"v1")
    v1 = hashlib.md5(b"v1", usedforsecurity=False).hexdigest()
    assert storage.read_bytes(uri("input/a.csv"), if_etag=v1) == b"v1"
    put(s3, "input/a.csv", b"v2")
    with pytest.raises(storage.Changed):
        storage.read_bytes(uri("input/a.csv"), if_etag=v1)


def test_the_engine_reports_an_upload_replaced_after_the_check_superseded(s3):
    from csv_ingest.engine import rules, worker

    body = b"id,name,email,date,amount,status\n1,ann lee,a@example.com,01-04-2025,10,active\n"
    entry = replace(manifest(1).uploads[0], etag=hashlib.md5(body, usedforsecurity=False).hexdigest())
    put(s3, entry.key, body + b"2,bob,b@example.com,01-04-2025,5,active\n")  # a newer upload of the same key
    layout = ingest.inspect_header(body, entry.key)
    fields = (layout.field_count, layout.positions, "2026-04-01T10:00:00.000Z", rules.DEFAULT_DATE_FORMATS)
    result = worker.process_upload(worker.UploadTask(entry, f"s3://{BUCKET}/", f"s3://{BUCKET}/", *fields))
    assert result.status == "failed"
    assert result.error.startswith("superseded: input/f0.csv was uploaded again after this run was planned")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == [entry.key]


def test_a_run_of_many_small_uploads_makes_at_most_11_s3_requests_per_upload(s3):
    # The driver's check (one ranged GET with If-Match per upload, not a HEAD and a GET), then the tasks: one GET of
    # the upload, and per output folder (rejected, Parquet, processed) one LIST for leftovers, the part file and
    # _SUCCESS. 11 requests an upload, whatever the number of uploads.
    import collections

    from csv_ingest.engine import rules, worker

    bodies = [f"id,name,email,date,amount,status\n{i},ann lee,a@example.com,01-04-2025,10,active\n".encode() for i in
              range(20)]  # fmt: skip
    run = manifest(len(bodies))
    run = replace(run, uploads=tuple(
        replace(u, etag=hashlib.md5(b, usedforsecurity=False).hexdigest(), size=len(b))
        for u, b in zip(run.uploads, bodies, strict=True)
    ))  # fmt: skip
    for u, body in zip(run.uploads, bodies, strict=True):
        put(s3, u.key, body)
    calls = collections.Counter()
    storage._s3_client().meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))

    found = ingest.check_uploads(run, uri(""))
    assert calls == {"GetObject": 20}
    tasks = [
        (i, worker.UploadTask(u, uri(""), uri(""), f.field_count, f.positions, "2026-04-01T10:00:00.000Z",
                              rules.DEFAULT_DATE_FORMATS))
        for i, (u, f) in enumerate(zip(run.uploads, found, strict=True))
    ]  # fmt: skip
    results = worker.process_group(tasks)

    assert [(i, r.status, r.rows_processed) for i, r in results] == [(i, "processed", 1) for i in range(20)]
    assert calls == {"GetObject": 40, "ListObjectsV2": 60, "PutObject": 120}
    assert sum(calls.values()) / len(bodies) <= 11
