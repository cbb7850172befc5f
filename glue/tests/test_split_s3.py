"""A big upload (the split path) on S3 reads ONE version of its key: every ranged read names the ETag the run was
planned with (If-Match). An upload replaced between the driver's check and the tasks' reads is failed as superseded —
never processed with the newer version's bytes under the older version's name (the batcher plans the newer one)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from functools import partial

import boto3
import pytest

import job
from csv_ingest import ingest
from csv_ingest.contract import errors
from csv_ingest.io import storage

DATA, CONTROL = "split-data", "split-control"
HEADER = b"id,name,email,date,amount,status\n"
SPLIT_BYTES = 64 * 1024  # the test's upload (~200 KB) takes the split path


def csv_rows(first: int, n: int, status: str) -> bytes:
    return HEADER + b"".join(f"{first + i},Ann Lee,a{i}@x.org,01-04-2025,{i}.5,{status}\n".encode() for i in range(n))


@contextmanager
def workers_env(spark, env: dict[str, str]):
    """Spark's Python workers see `env` (moto's endpoint) while inside."""
    sc = spark.sparkContext
    saved = dict(sc.environment)
    sc.environment.update(env)
    try:
        yield
    finally:
        sc.environment.clear()
        sc.environment.update(saved)


@pytest.mark.parametrize("replaced", [False, True], ids=["unchanged", "replaced-after-the-check"])
def test_a_big_upload_is_read_as_the_version_planned(spark, moto_s3, monkeypatch, replaced):
    s3 = boto3.client("s3")
    # moto's state is per process, not per server: each case has keys of its own
    case = "replaced" if replaced else "unchanged"
    s3.create_bucket(Bucket=DATA)
    s3.create_bucket(Bucket=CONTROL)
    key = f"input/{case}/big.csv"
    run_key = f"20261130T110000Z-{case}"
    planned = csv_rows(1, 4_000, "active")
    etag = s3.put_object(Bucket=DATA, Key=key, Body=planned)["ETag"].strip('"')
    manifest = {
        "format": "csv-ingest-manifest/1",
        "runKey": run_key,
        "createdAt": "2026-11-30T11:00:00.000Z",
        "bucket": DATA,
        "statsKey": f"stats/runs/{run_key}.json",
        "fileStatsKey": f"stats/files/ingest_date=2026-11-30/{run_key}.jsonl",
        "uploads": [
            {
                "uploadId": f"{DATA}/{key}@V1",
                "key": key,
                "versionId": "V1",
                "etag": etag,
                "lastModified": "2026-11-30T10:59:00.000Z",
                "size": len(planned),
                "outputPrefix": f"processed/{case}/big/v=V1/",
                "rejectedPrefix": f"rejected/{case}/big/v=V1/",
                "parquetPrefix": f"parquet/ingest_date=2026-11-30/{case}/big/v=V1/",
            }
        ],
    }
    s3.put_object(Bucket=CONTROL, Key=f"manifests/{run_key}.json", Body=json.dumps(manifest).encode())
    assert len(planned) > SPLIT_BYTES
    checked = ingest.check_uploads

    def check_then_replace(*args, **kwargs):
        found = checked(*args, **kwargs)
        if replaced:  # a new version lands after the driver's check, before the tasks read the ranges
            s3.put_object(Bucket=DATA, Key=key, Body=csv_rows(1, 4_000, "closed"))
        return found

    monkeypatch.setattr(ingest, "check_uploads", check_then_replace)
    monkeypatch.setattr(job, "run_ingest", partial(ingest.run_ingest, split_bytes=SPLIT_BYTES))
    args = job.JobArguments(
        manifest_uri=f"s3://{CONTROL}/manifests/{run_key}.json",
        run_key=run_key,
        data_root=f"s3://{DATA}/",
        output_root=f"s3://{DATA}/",
    )
    storage._s3_client.cache_clear()
    with workers_env(spark, moto_s3):
        if replaced:  # its only upload failed: the job writes its stats, then fails the run
            with pytest.raises(errors.RunFailed, match="no upload could be processed"):
                job.execute(spark, args, "2026-11-30T11:00:30.000Z")
        else:
            job.execute(spark, args, "2026-11-30T11:00:30.000Z")

    stats = json.loads(s3.get_object(Bucket=DATA, Key=f"stats/runs/{run_key}.json")["Body"].read())
    [file] = stats["files"]
    processed = s3.list_objects_v2(Bucket=DATA, Prefix=f"processed/{case}/big/v=V1/").get("Contents", [])
    if not replaced:
        assert (file["status"], file["rowsProcessed"]) == ("processed", 4_000)
        body = s3.get_object(Bucket=DATA, Key=f"processed/{case}/big/v=V1/part-00000.csv")["Body"].read()
        assert b",active," in body
        assert b",closed," not in body
        return
    assert file["status"] == "failed"
    assert file["error"] == f"superseded: {key} was uploaded again after this run was planned (etag {etag})"
    assert not any(o["Key"].endswith("_SUCCESS") for o in processed)
