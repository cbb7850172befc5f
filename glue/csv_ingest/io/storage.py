"""Reads and writes by URI (manifest, stats, CSV headers, publishing moves, the Arrow engine's uploads and outputs):
boto3 for s3://, plain files for file://.

A run of thousands of uploads makes several S3 requests per upload on the driver (version check, header, moves):
one shared client (creating one costs tens of milliseconds) and `for_each`, which runs such per-upload work on a
thread pool, keep that latency-bound part from growing into minutes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Concurrent S3 requests from the driver (also the client's connection pool size).
PARALLEL_REQUESTS = 32
# DeleteObjects takes at most this many keys per request.
DELETE_BATCH = 1000


def join_uri(root: str, key: str) -> str:
    """`root` + `key`, with exactly one slash between them (roots are folder URIs such as s3://bucket/)."""
    return root.rstrip("/") + "/" + key.lstrip("/")


# URIs here are literal: a root (s3://bucket/ or file:///path/) followed by an object key as S3 spells it. Keys may
# hold "#", "?", "%" or spaces, so nothing is percent-decoded or split off as a query or fragment; Spark reads the
# same literal form (Hadoop paths are not URL-encoded).


def local_uri(path: str | os.PathLike) -> str:
    """The literal file:// URI of a local path (not percent-encoded, unlike Path.as_uri)."""
    return "file://" + str(Path(path).absolute())


# A local file system allows at most 255 bytes per path component (Linux, macOS); an S3 key may have a segment of any
# length up to its 1,024 bytes. So local paths only (the twin's staging folders, tests; never an S3 key) replace a
# component over LOCAL_NAME_MAX_BYTES (room left for the ".<name>.tmp" of _write_local) with "~sha256-" + the hex
# SHA-256 of its UTF-8 bytes. The twin stages and copies back with the same rule (packages/twin/src/glue/spark.ts,
# localName), mapping such names back to the key's own segments.
LOCAL_NAME_MAX_BYTES = 200
LOCAL_NAME_HASH_PREFIX = "~sha256-"


def local_name(component: str) -> str:
    """A path component as it is stored locally: itself, or its hash when it is too long for a file name."""
    raw = component.encode("utf-8", "surrogateescape")
    if len(raw) <= LOCAL_NAME_MAX_BYTES:
        return component
    return LOCAL_NAME_HASH_PREFIX + hashlib.sha256(raw).hexdigest()


def _local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        path = uri[len("file://") :]
    elif uri.startswith("file:"):  # Hadoop's short form, file:/path
        path = uri[len("file:") :]
    elif "://" not in uri:
        path = uri
    else:
        raise ValueError(f"not a local URI: {uri}")
    return Path(*(local_name(part) for part in Path(path).parts))


def _s3_location(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


def _is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://", "s3n://"))


@lru_cache(maxsize=1)
def _s3_client():
    """One client for the process: boto3 clients are thread-safe, and making one per request is slow."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=PARALLEL_REQUESTS)
    # Its own session: boto3's default session is not safe to make clients from on several threads at once.
    return boto3.session.Session().client("s3", config=config)


def for_each(items: Iterable[T], work: Callable[[T], R], workers: int | None = None) -> list[R]:
    """`work` applied to every item on a thread pool, results in the items' order. Every item runs; the first
    exception (in item order) is raised after all have finished: callers that must not stop catch inside `work`."""
    items = list(items)
    workers = PARALLEL_REQUESTS if workers is None else workers
    if len(items) <= 1 or workers <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = [pool.submit(work, item) for item in items]
        wait(futures)  # every item runs, even after one has failed
    return [f.result() for f in futures]


class Changed(Exception):
    """The object is no longer the version asked for (its ETag changed)."""


# In Changed's message; a Spark task's Changed reaches the driver as the text of a Java exception, so the driver
# recognises it by this (`was_changed`).
CHANGED_MARK = "is no longer ETag"


def was_changed(err: BaseException, uri: str, etag: str) -> bool:
    """Whether `err` is the Changed of a read of `uri` at `etag`, here or raised in a Spark task (matched on the whole
    message: keys are untrusted, and a key may hold the marker's words)."""
    return isinstance(err, Changed) or f"{uri} {CHANGED_MARK} {etag}" in str(err)


def read_bytes(uri: str, limit: int | None = None, if_etag: str | None = None, start: int = 0) -> bytes:
    """The object's bytes, or only `limit` bytes from `start`. Raises FileNotFoundError when it does not exist, and
    Changed when `if_etag` is given and S3 holds another version (S3 only: a local file is checked by the driver)."""
    if _is_s3(uri):
        bucket, key = _s3_location(uri)
        client = _s3_client()
        if limit:
            extra = {"Range": f"bytes={start}-{start + limit - 1}"}
        else:
            extra = {"Range": f"bytes={start}-"} if start else {}
        if if_etag:
            extra["IfMatch"] = f'"{if_etag.strip(chr(34))}"'
        try:
            return client.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
        except client.exceptions.NoSuchKey as err:
            raise FileNotFoundError(f"no such object: {uri}") from err
        except client.exceptions.ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            # An empty object answers a Range request with 416 InvalidRange.
            if code == "InvalidRange":
                return b""
            if code in ("PreconditionFailed", "412"):
                raise Changed(f"{uri} {CHANGED_MARK} {if_etag}") from err
            raise
    with _local_path(uri).open("rb") as handle:
        handle.seek(start)
        return handle.read(limit) if limit else handle.read()


def etag_matches(uri: str, expected: str) -> bool | None:
    """Is the object still the version the manifest names? S3: its ETag. A local file: its MD5, which is the ETag
    of a single-part upload; None (cannot tell) for a multipart ETag. Raises FileNotFoundError when it is gone."""
    expected = expected.strip('"')
    if _is_s3(uri):
        bucket, key = _s3_location(uri)
        client = _s3_client()
        try:
            return client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"') == expected
        except client.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(f"no such object: {uri}") from err
            raise
    if "-" in expected:
        return None
    return etag_of_local(uri) == expected


def read_current_head(uri: str, limit: int, expected_etag: str) -> bytes:
    """The first `limit` bytes of the object if it is still the version whose ETag is `expected_etag`; raises Changed
    when it is not, FileNotFoundError when it is gone. S3: ONE request (a ranged GET with If-Match), not a HEAD and
    a GET. A local file: its MD5 compared (a multipart ETag cannot be checked), then its first bytes."""
    if _is_s3(uri):
        return read_bytes(uri, limit, if_etag=expected_etag)
    if etag_matches(uri, expected_etag) is False:
        raise Changed(f"{uri} {CHANGED_MARK} {expected_etag}")
    return read_bytes(uri, limit)


def etag_of_local(uri: str) -> str:
    """A local file's MD5 (hex): the ETag S3 gives a single-part upload of the same bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with _local_path(uri).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_text(uri: str, text: str, content_type: str = "application/json") -> None:
    write_bytes(uri, text.encode("utf-8"), content_type)


def write_bytes(uri: str, data: bytes, content_type: str) -> None:
    if _is_s3(uri):
        bucket, key = _s3_location(uri)
        _s3_client().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        return
    _write_local(uri, lambda handle: handle.write(data))


def write_streamed(uri: str, write: Callable[[BinaryIO], None], content_type: str) -> None:
    """Writes an object whose bytes `write(handle)` produces piece by piece, never all in memory at once (S3: spooled
    to a temporary file past 64 MiB, then uploaded, in parts when large)."""
    if _is_s3(uri):
        bucket, key = _s3_location(uri)
        with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as handle:
            write(handle)
            handle.seek(0)
            _s3_client().upload_fileobj(handle, bucket, key, ExtraArgs={"ContentType": content_type})
        return
    _write_local(uri, write)


def _write_local(uri: str, write: Callable[[BinaryIO], object]) -> None:
    """Written to a hidden file beside it, then renamed: a reader never sees half a file."""
    path = _local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        write(handle)
    os.replace(tmp, path)


def list_files(prefix_uri: str) -> list[str]:
    """URIs of the objects (files) under a folder URI, recursively; empty when there are none."""
    if _is_s3(prefix_uri):
        bucket, prefix = _s3_location(prefix_uri)
        scheme = prefix_uri.split("://", 1)[0]
        paginator = _s3_client().get_paginator("list_objects_v2")
        return [
            f"{scheme}://{bucket}/{o['Key']}"
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
            for o in page.get("Contents", [])
        ]
    root = _local_path(prefix_uri)
    if not root.exists():
        return []
    return [local_uri(p) for p in sorted(root.rglob("*")) if p.is_file()]


def move(src_uri: str, dst_uri: str) -> None:
    """Moves one object (S3: server-side copy, then delete)."""
    if _is_s3(src_uri):
        (src_bucket, src_key), (dst_bucket, dst_key) = _s3_location(src_uri), _s3_location(dst_uri)
        client = _s3_client()
        client.copy_object(Bucket=dst_bucket, Key=dst_key, CopySource={"Bucket": src_bucket, "Key": src_key})
        client.delete_object(Bucket=src_bucket, Key=src_key)
        return
    dst = _local_path(dst_uri)
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(_local_path(src_uri), dst)


def delete_folder(prefix_uri: str) -> None:
    """Deletes every object under a folder URI (best effort for local folders)."""
    if _is_s3(prefix_uri):
        client = _s3_client()
        bucket, _ = _s3_location(prefix_uri)
        keys = [_s3_location(uri)[1] for uri in list_files(prefix_uri)]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": k} for k in keys[start : start + DELETE_BATCH]]
            answer = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise OSError(f"could not delete s3://{bucket}/{first.get('Key')}: {first.get('Message')}")
        return
    shutil.rmtree(_local_path(prefix_uri), ignore_errors=True)
