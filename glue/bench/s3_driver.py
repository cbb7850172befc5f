"""Benchmark: the Glue job's driver-side S3 work for a run of many uploads, against the emulator's S3 (moto server).

    .venv/bin/python glue/bench/s3_driver.py [--uploads 500] [--latency-ms 20] [--run-only]

Per run the driver checks every upload (version check + first bytes: `ingest.check_uploads`). Three ways of making
those requests are timed, and then the tasks (csv_ingest/engine/worker.py), which read and write each upload themselves:

- "client per request, one at a time": a new boto3 client for every request, uploads one after the other;
- "one client, one at a time";
- "one client, N in parallel": what the job does now (`storage.for_each`).

Then the whole run of many small uploads as the job makes it (the driver's check, then the tasks: batches of small
uploads, reads and writes 16 at a time): uploads/s and S3 requests per upload, by API.

The emulator answers in about a millisecond; S3 takes tens. `--latency-ms` adds that much before every request
(a botocore hook), to show what the request pattern costs against real S3 latency. Not part of any test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

GLUE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(GLUE_DIR))

BUCKET = "bench-bucket"
HEADER = b"id,name,email,date,amount,status\n"


def manifest_for(uploads: int, etags: list[str]):
    from csv_ingest.contract.documents import parse_manifest

    doc = {
        "format": "csv-ingest-manifest/1",
        "runKey": "BENCH",
        "createdAt": "2026-04-01T10:00:00.000Z",
        "bucket": BUCKET,
        "statsKey": "stats/runs/BENCH.json",
        "uploads": [
            {
                "uploadId": f"{BUCKET}/input/f{i:05d}.csv@T",
                "key": f"input/f{i:05d}.csv",
                "versionId": None,
                "etag": etags[i],
                "lastModified": "2026-04-01T09:00:00.000Z",
                "size": 1100,
                "outputPrefix": f"processed/f{i:05d}/v=T/",
                "rejectedPrefix": f"rejected/f{i:05d}/v=T/",
                "parquetPrefix": f"parquet/ingest_date=2026-04-01/f{i:05d}/v=T/",
            }
            for i in range(uploads)
        ],
    }
    return parse_manifest(json.dumps(doc), "bench")


def engine_tasks(run, root: str, ms: float, client, cores: int = 2) -> None:
    """The whole run as the job makes it: the driver's check (`ingest.check_uploads`), then the tasks, which read,
    process and write each upload themselves, `cores` tasks at a time, uploads dealt to tasks as ingest does. Prints
    uploads/s and the S3 requests per upload, by API."""
    import collections
    from concurrent.futures import ThreadPoolExecutor

    from csv_ingest import ingest
    from csv_ingest.engine import rules, worker
    from csv_ingest.io import storage

    when = "2026-04-01T10:00:00.000Z"
    formats = rules.DEFAULT_DATE_FORMATS
    calls: collections.Counter[str] = collections.Counter()
    shared = client()
    shared.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))

    cached = storage._s3_client
    storage._s3_client = lambda: shared
    storage.PARALLEL_REQUESTS = 32
    try:
        start = time.perf_counter()
        found = ingest.check_uploads(run, root)
        layouts = [f for f in found if isinstance(f, ingest.Layout)]
        assert len(layouts) == len(run.uploads), found[:3]
        tasks = [
            worker.UploadTask(u, root, root, f.field_count, f.positions, when, formats)
            for u, f in zip(run.uploads, layouts, strict=True)
        ]
        groups = ingest.balanced_slices([t.entry.size for t in tasks], 4 * cores)

        def task(group: list[int]) -> list:
            return worker.process_group([(i, tasks[i]) for i in group])

        with ThreadPoolExecutor(cores) as pool:
            answers = [answer for answers in pool.map(task, groups) for answer in answers]
        seconds = time.perf_counter() - start
    finally:
        storage._s3_client = cached
    assert len(answers) == len(tasks)
    assert all(r.status == "processed" for _, r in answers), answers[:3]
    n = len(tasks)
    by_api = ", ".join(f"{name} {count / n:.1f}" for name, count in sorted(calls.items()))
    label = f"whole run: check + {cores} tasks"
    print(
        f"{ms:10.0f} ms  {label:38} {seconds:13.2f}s  {n / seconds:8.1f} uploads/s  "
        f"{sum(calls.values()) / n:.1f} S3 requests/upload ({by_api})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=500)
    parser.add_argument("--latency-ms", default="20", help="comma-separated added latencies per request")
    parser.add_argument("--parallel", type=int, default=32)
    parser.add_argument("--run-only", action="store_true", help="only the whole run (not the three ways of checking)")
    args = parser.parse_args()

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"

    import boto3

    from csv_ingest import ingest
    from csv_ingest.io import storage

    admin = boto3.client("s3")
    admin.create_bucket(Bucket=BUCKET)
    etags = []
    for i in range(args.uploads):
        body = HEADER + b"".join(  # ~1 KB: 20 rows
            f"{i * 100 + j},Ann Lee,a{j}@example.com,01-04-2025,{j}.25,active\n".encode() for j in range(20)
        )
        etags.append(admin.put_object(Bucket=BUCKET, Key=f"input/f{i:05d}.csv", Body=body)["ETag"].strip('"'))
    run = manifest_for(args.uploads, etags)
    root = f"s3://{BUCKET}/"
    cached_client = storage._s3_client
    latency = [0.0]

    def with_latency(client):
        def wait(**_):
            time.sleep(latency[0])

        client.meta.events.register("before-send.s3", wait)
        return client

    def per_request_client():  # exactly what the job's _s3_client() used to do
        return with_latency(boto3.client("s3"))

    def shared_client():
        return shared[0]

    shared = [None]
    variants = [
        ("client per request, one at a time", per_request_client, 1),
        ("one client, one at a time", shared_client, 1),
        (f"one client, {args.parallel} in parallel", shared_client, args.parallel),
    ]
    print(f"{args.uploads:,} uploads; S3: moto server on {host}:{port}")
    print(f"{'added latency':>13}  {'requests made by':38} {'check uploads':>14}")
    for ms in (float(x) for x in args.latency_ms.split(",")):
        latency[0] = ms / 1000
        for label, client, workers in [] if args.run_only else variants:
            cached_client.cache_clear()
            shared[0] = with_latency(cached_client())
            storage._s3_client = client
            storage.PARALLEL_REQUESTS = workers
            try:
                start = time.perf_counter()
                found = ingest.check_uploads(run, root)
                checked = time.perf_counter() - start
                assert all(isinstance(f, ingest.Layout) for f in found), found[:3]
            finally:
                storage._s3_client = cached_client
            print(f"{ms:10.0f} ms  {label:38} {checked:13.2f}s", flush=True)
        cached_client.cache_clear()
        engine_tasks(run, root, ms, lambda: with_latency(cached_client()))
    server.stop()


if __name__ == "__main__":
    main()
