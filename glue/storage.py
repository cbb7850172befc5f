"""Small reads and writes by URI (manifest, stats, CSV headers): boto3 for s3://, plain files for file://."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse


def join_uri(root: str, key: str) -> str:
    """`root` + `key`, with exactly one slash between them (roots are folder URIs such as s3://bucket/)."""
    return root.rstrip("/") + "/" + key.lstrip("/")


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    raise ValueError(f"not a local URI: {uri}")


def _s3_location(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _is_s3(uri: str) -> bool:
    return urlparse(uri).scheme in ("s3", "s3a", "s3n")


def _s3_client():  # pragma: no cover - exercised on AWS and with moto
    import boto3

    return boto3.client("s3")


def read_bytes(uri: str, limit: int | None = None) -> bytes:
    """The object's bytes, or only its first `limit` bytes. Raises FileNotFoundError when it does not exist."""
    if _is_s3(uri):
        bucket, key = _s3_location(uri)
        client = _s3_client()
        extra = {"Range": f"bytes=0-{limit - 1}"} if limit else {}
        try:
            return client.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
        except client.exceptions.NoSuchKey as err:
            raise FileNotFoundError(f"no such object: {uri}") from err
        except client.exceptions.ClientError as err:
            # An empty object answers a Range request with 416 InvalidRange.
            if err.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""
            raise
    with _local_path(uri).open("rb") as handle:
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
    data = text.encode("utf-8")
    if _is_s3(uri):
        bucket, key = _s3_location(uri)
        _s3_client().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        return
    path = _local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a reader never sees half a stats file.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def list_files(prefix_uri: str) -> list[str]:
    """URIs of the objects (files) under a folder URI, recursively; empty when there are none."""
    if _is_s3(prefix_uri):
        bucket, prefix = _s3_location(prefix_uri)
        scheme = urlparse(prefix_uri).scheme
        paginator = _s3_client().get_paginator("list_objects_v2")
        return [
            f"{scheme}://{bucket}/{o['Key']}"
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
            for o in page.get("Contents", [])
        ]
    root = _local_path(prefix_uri)
    if not root.exists():
        return []
    return [p.as_uri() for p in sorted(root.rglob("*")) if p.is_file()]


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
        for uri in list_files(prefix_uri):
            client.delete_object(Bucket=bucket, Key=_s3_location(uri)[1])
        return
    shutil.rmtree(_local_path(prefix_uri), ignore_errors=True)
