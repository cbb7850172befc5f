"""Least privilege proven by traffic (issue 12), the Glue job's side: the real job (job.execute, local Spark) runs end
to end on S3 — moto's server, in this process — with s3:// roots in buckets named as the twin names its data and
control buckets, over a run that takes every S3 path the job has:

- several small uploads, batched in one task (ranged GET with If-Match on the driver, GET with If-Match in the task,
  each output folder listed and cleared, parts and `_SUCCESS` put);
- an upload over the split threshold (lowered for the test), processed over the cluster (ranged GETs, the folders
  cleared from the driver, a part big enough for a multipart upload);
- leftovers of an earlier attempt in three output folders, one per tree (DeleteObjects);
- an upload with a bad header, one whose ETag changed (If-Match fails), one that is gone (NoSuchKey);
- a hostile key (`..`, spaces, non-ASCII).

Every botocore call of the job's client(s), on the driver and in Spark's Python workers, is recorded with the IAM
action(s) and resource ARN(s) AWS authorises it as (s3_calls.py), normalised, and compared with the committed record
infra/tests/fixtures/calls.glue-job.jsonl, which infra/tests/traffic.test.ts checks against the Glue role's
policies. A call the recorder cannot map fails this test; so does any difference from the committed record
(regenerate it with UPDATE_CALL_RECORD=1 and review the diff).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import partial
from pathlib import Path

import boto3
import pytest
import s3_calls
from support import REPO

import job
from csv_ingest import ingest
from csv_ingest.io import storage

# packages/twin/src/constants.ts TWIN_NAMES: the traffic check maps these to a stage's bucket names.
DATA = "csv-ingest-local-data"
CONTROL = "csv-ingest-local-control"
PRINCIPAL = "glue-job"  # infra/tests/helpers/traffic.ts roleOfPrincipal: the Glue job's role
RECORD = REPO / "infra" / "tests" / "fixtures" / "calls.glue-job.jsonl"
UPDATE_ENV = "UPDATE_CALL_RECORD"

RUN_KEY = "20261130T100000Z-run00001"
DAY = "2026-11-30"
PROCESSING_DATE = "2026-11-30T10:00:30.000Z"
HEADER = b"id,name,email,date,amount,status\n"
# Uploads over this take the split path (split.SPLIT_BYTES is 256 MiB on Glue).
SPLIT_BYTES = 1024 * 1024
# The big upload's processed part must pass s3transfer's multipart threshold (8 MiB) to show the multipart calls.
BIG_ROWS = 60_000


def rows(first: int, n: int, name: str = "Ann Lee") -> bytes:
    return b"".join(
        f"{first + i},{name},a{i}@example.com,01-04-2025,{i % 97}.25,{('active', 'closed')[i % 2]}\n".encode()
        for i in range(n)
    )


def big_upload() -> bytes:
    long_name = "Margaret Anne Lee-Hutchinson of the Northern Sales Region"  # wide rows: few rows, many bytes
    return HEADER + rows(1, BIG_ROWS, long_name)


# (key, bytes in S3 at run time or None, output name as the batcher's uploadOutputName gives it)
UPLOADS = [
    ("input/sales/a.csv", HEADER + rows(1, 3), "sales/a"),
    ("input/sales/b.csv", HEADER + rows(10, 3) + b'12,=HYPERLINK("x"),b@x.org,01-04-2025,1,active\n', "sales/b"),
    ("input/c.csv", HEADER + rows(20, 2) + b"21,short row\n", "c"),
    ("input/bad header.csv", b"foo,bar\n1,2\n", "bad header"),
    ("input/changed.csv", HEADER + rows(30, 2), "changed"),
    ("input/gone.csv", None, "gone"),
    ("input/x/../escape/na me ü.csv", HEADER + rows(40, 2), "x/%2E./escape/na me ü"),
    ("input/big.csv", None, "big"),  # bytes: big_upload()
]
# What an earlier attempt of this run left in output folders (cleared before the outputs are written).
LEFTOVERS = [
    "processed/sales/b/v=V2/part-00007.csv",
    f"parquet/ingest_date={DAY}/c/v=V3/part-00001.parquet",
    "rejected/big/v=V8/part-00003.csv",
]


def manifest(etags: dict[str, str], sizes: dict[str, int]) -> dict:
    uploads = []
    for i, (key, _, name) in enumerate(UPLOADS, start=1):
        uploads.append(
            {
                "uploadId": f"{DATA}/{key}@VERSION{i}",
                "key": key,
                "versionId": f"VERSION{i}",  # as on a versioned bucket: the job reads the key and checks the ETag
                "etag": etags[key],
                "lastModified": "2026-11-30T09:59:00.000Z",
                "size": sizes[key],
                "outputPrefix": f"processed/{name}/v=V{i}/",
                "rejectedPrefix": f"rejected/{name}/v=V{i}/",
                "parquetPrefix": f"parquet/ingest_date={DAY}/{name}/v=V{i}/",
            }
        )
    return {
        "format": "csv-ingest-manifest/1",
        "runKey": RUN_KEY,
        "createdAt": "2026-11-30T10:00:00.000Z",
        "bucket": DATA,
        "statsKey": f"stats/runs/{RUN_KEY}.json",
        "fileStatsKey": f"stats/files/ingest_date={DAY}/{RUN_KEY}.jsonl",
        "uploads": uploads,
    }


def normalise(lines: list[dict]) -> list[str]:
    """The record as committed: no timestamps, one line per distinct call, sorted."""
    out = set()
    for line in lines:
        line = {**line, "t": ""}
        del line["pid"]
        out.add(json.dumps(line, ensure_ascii=False))
    return sorted(out)


def run_recorded(spark, env: dict[str, str], record: Path, tmp_path: Path) -> dict:
    """job.execute on the moto buckets, every S3 call of the driver and the workers appended to `record`."""
    sc = spark.sparkContext
    saved = dict(sc.environment)
    site = s3_calls.worker_site_dir(tmp_path / "site")
    python_path = os.pathsep.join(p for p in (str(site), saved.get("PYTHONPATH", "")) if p)
    # A new environment for the Python workers: Spark starts a new worker daemon for it, with the recorder installed.
    sc.environment.update(env)
    sc.environment.update(
        {"PYTHONPATH": python_path, s3_calls.RECORD_ENV: str(record), s3_calls.PRINCIPAL_ENV: PRINCIPAL}
    )
    s3_calls.install(str(record), PRINCIPAL)
    storage._s3_client.cache_clear()
    args = job.JobArguments(
        manifest_uri=f"s3://{CONTROL}/manifests/{RUN_KEY}.json",
        run_key=RUN_KEY,
        data_root=f"s3://{DATA}/",
        output_root=f"s3://{DATA}/",
    )
    try:
        return job.execute(spark, args, PROCESSING_DATE)
    finally:
        s3_calls.uninstall()
        storage._s3_client.cache_clear()
        sc.environment.clear()
        sc.environment.update(saved)


def test_the_jobs_s3_calls_are_the_committed_record(spark, moto_s3, tmp_path, monkeypatch):
    admin = boto3.client("s3")  # made before the recorder is installed: its calls are the test's, not the job's
    admin.create_bucket(Bucket=DATA)
    admin.create_bucket(Bucket=CONTROL)
    etags, sizes = {}, {}
    for key, body, _ in UPLOADS:
        data = big_upload() if key == "input/big.csv" else body
        if data is None:
            etags[key], sizes[key] = "0" * 32, 100  # planned, then deleted before the run
            continue
        etags[key] = admin.put_object(Bucket=DATA, Key=key, Body=data)["ETag"].strip('"')
        sizes[key] = len(data)
    assert etags["input/changed.csv"] == hashlib.md5(UPLOADS[4][1], usedforsecurity=False).hexdigest()
    admin.put_object(Bucket=DATA, Key="input/changed.csv", Body=HEADER + rows(90, 1))  # uploaded again after planning
    for key in LEFTOVERS:
        admin.put_object(Bucket=DATA, Key=key, Body=b"from an earlier attempt\n")
    doc = manifest(etags, sizes)
    admin.put_object(Bucket=CONTROL, Key=f"manifests/{RUN_KEY}.json", Body=json.dumps(doc).encode())
    assert sizes["input/big.csv"] > SPLIT_BYTES >= max(s for k, s in sizes.items() if k != "input/big.csv")
    monkeypatch.setattr(job, "run_ingest", partial(ingest.run_ingest, split_bytes=SPLIT_BYTES))

    record = tmp_path / "calls.jsonl"
    stats = run_recorded(spark, moto_s3, record, tmp_path)

    # The run did what each upload is there for.
    by_key = {f["key"]: f for f in stats["files"]}
    assert {k: f["status"] for k, f in by_key.items()} == {
        "input/sales/a.csv": "processed",
        "input/sales/b.csv": "processed",
        "input/c.csv": "processed",
        "input/bad header.csv": "failed",
        "input/changed.csv": "failed",
        "input/gone.csv": "failed",
        "input/x/../escape/na me ü.csv": "processed",
        "input/big.csv": "processed",
    }, by_key
    assert "missing required column(s)" in by_key["input/bad header.csv"]["error"]
    assert by_key["input/changed.csv"]["error"].startswith("superseded: input/changed.csv was uploaded again")
    assert "object not found" in by_key["input/gone.csv"]["error"]
    assert by_key["input/big.csv"]["rowsProcessed"] == BIG_ROWS
    listed = {o["Key"] for o in admin.list_objects_v2(Bucket=DATA).get("Contents", [])}
    assert not listed & set(LEFTOVERS)
    assert "processed/x/%2E./escape/na me ü/v=V7/part-00000.csv" in listed
    big_part = admin.head_object(Bucket=DATA, Key="processed/big/v=V8/part-00000.csv")
    assert big_part["ContentLength"] > 8 * 1024 * 1024
    assert "-" in big_part["ETag"]  # a multipart upload

    lines = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    unmapped = [line["unmapped"] for line in lines if "unmapped" in line]
    assert unmapped == [], f"calls the recorder cannot map to IAM (s3_calls.authorisations): {unmapped}"
    assert {line["principal"] for line in lines} == {PRINCIPAL}
    # Both sides recorded: the driver (this process) and Spark's Python workers (the tasks' reads and writes).
    pids = {line["pid"] for line in lines}
    assert os.getpid() in pids
    assert len(pids) > 1
    now = normalise(lines)
    if os.environ.get(UPDATE_ENV) == "1":
        RECORD.write_text("".join(f"{line}\n" for line in now), encoding="utf-8")
    committed = RECORD.read_text(encoding="utf-8").splitlines() if RECORD.exists() else []
    missing, extra = sorted(set(committed) - set(now)), sorted(set(now) - set(committed))
    assert now == committed, (
        f"the job's S3 calls differ from the committed record {RECORD.relative_to(REPO)}.\n"
        f"made now, not in the record:\n  " + "\n  ".join(extra) + "\n"
        "in the record, not made now:\n  " + "\n  ".join(missing) + "\n"
        f"If the change is intended: {UPDATE_ENV}=1 .venv/bin/pytest -q glue/tests/test_job_s3_calls.py, review the "
        "diff, then run `pnpm exec vitest run --project infra infra/tests/traffic.test.ts` (the Glue role's policies "
        "must allow every call)."
    )


K = "arn:aws:s3:::b/k"


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("GetObject", {"Bucket": "b", "Key": "k", "Range": "bytes=0-9", "IfMatch": '"e"'}, [("s3:GetObject", [K], {})]),
        ("GetObject", {"Bucket": "b", "Key": "k", "VersionId": "v"}, [("s3:GetObjectVersion", [K], {})]),
        ("HeadObject", {"Bucket": "b", "Key": "k"}, [("s3:GetObject", [K], {})]),
        (
            "ListObjectsV2",
            {"Bucket": "b", "Prefix": "p/"},
            [("s3:ListBucket", ["arn:aws:s3:::b"], {"s3:prefix": "p/"})],
        ),
        ("UploadPart", {"Bucket": "b", "Key": "k", "UploadId": "u", "PartNumber": 2}, [("s3:PutObject", [K], {})]),
        ("AbortMultipartUpload", {"Bucket": "b", "Key": "k", "UploadId": "u"}, [("s3:AbortMultipartUpload", [K], {})]),
        (
            "CopyObject",
            {"Bucket": "d", "Key": "to", "CopySource": "s/from%20here?versionId=v1"},
            [("s3:GetObjectVersion", ["arn:aws:s3:::s/from here"], {}), ("s3:PutObject", ["arn:aws:s3:::d/to"], {})],
        ),
        (
            "DeleteObjects",
            {"Bucket": "b", "Delete": {"Objects": [{"Key": "x"}, {"Key": "y", "VersionId": "v"}, {"Key": "z"}]}},
            [
                ("s3:DeleteObject", ["arn:aws:s3:::b/x", "arn:aws:s3:::b/z"], {}),
                ("s3:DeleteObjectVersion", ["arn:aws:s3:::b/y"], {}),
            ],
        ),
    ],
)
def test_calls_map_to_the_iam_requests_aws_authorises(operation, params, expected):
    assert s3_calls.authorisations(operation, params) == expected


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("GetObjectAcl", {"Bucket": "b", "Key": "k"}),
        ("PutObject", {"Bucket": "b", "Key": "k", "Tagging": "a=b"}),
        ("PutObject", {"Bucket": "b", "Key": "k", "ServerSideEncryption": "aws:kms"}),
    ],
)
def test_a_call_the_recorder_does_not_model_is_refused(operation, params):
    with pytest.raises(s3_calls.Unmapped, match=operation):
        s3_calls.authorisations(operation, params)
