"""Records every AWS call a process's botocore clients make, as IAM authorises it: one JSON line per call in the
twin's call-record format (packages/twin/src/faults/record.ts: principal, service, IAM action, resource ARNs, outcome),
plus the API operation (`api`), for a listing its `s3:prefix` condition key (`context`), and the process (`pid`).

`install(path, principal)` wraps botocore's `Session.create_client`, so every client made afterwards in the process
(the job's one shared S3 client, s3transfer's calls through it) reports each call through botocore's event system:
`before-parameter-build` (the call's parameters, after botocore's own handlers) maps it to IAM, `after-call` /
`after-call-error` add the outcome and append the line. A call this module cannot map is written as
`{"unmapped": ...}`: the test fails on it rather than leave a call unchecked.

Spark's Python workers are other processes: `worker_site_dir` writes a `sitecustomize.py` that installs the same
recorder at their start (the test puts its folder on the workers' PYTHONPATH).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RECORD_ENV = "JOB_S3_CALLS_FILE"
PRINCIPAL_ENV = "JOB_S3_CALLS_PRINCIPAL"


class Unmapped(Exception):
    """A call whose IAM authorisation this module does not model."""


# Parameters that need another action than the operation's own (ACLs, tags, object lock, SSE-KMS's kms:*): none of
# the job's calls should carry them; a call that does is reported as unmapped instead of being checked half.
_NEEDS_MORE = (
    "ACL", "GrantFullControl", "GrantRead", "GrantReadACP", "GrantWrite", "GrantWriteACP", "Tagging",
    "TaggingDirective", "ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus",
    "SSEKMSKeyId", "SSEKMSEncryptionContext", "BypassGovernanceRetention",
)  # fmt: skip


def _object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _copy_source(source: Any) -> tuple[str, str, str | None]:
    """CopySource as a dict ({Bucket, Key, VersionId}) or botocore's string form `bucket/key?versionId=v`."""
    if isinstance(source, dict):
        return source["Bucket"], source["Key"], source.get("VersionId")
    from urllib.parse import unquote

    text, _, query = str(source).partition("?versionId=")
    bucket, _, key = unquote(text).lstrip("/").partition("/")
    return bucket, key, (query or None)


def authorisations(operation: str, params: dict[str, Any]) -> list[tuple[str, list[str], dict[str, str]]]:
    """The IAM (action, resources, condition context) requests one S3 API call is authorised as (the S3 actions
    reference: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html). Raises
    Unmapped for any call or parameter it does not model."""
    extra = [p for p in _NEEDS_MORE if p in params]
    if operation in ("PutObject", "CreateMultipartUpload", "CopyObject") and params.get("ServerSideEncryption") not in (
        None,
        "AES256",
    ):
        extra.append("ServerSideEncryption")
    if extra:
        raise Unmapped(f"S3.{operation} with {', '.join(extra)}")
    bucket = params.get("Bucket", "")
    key = params.get("Key", "")
    version = params.get("VersionId")
    if operation in ("GetObject", "HeadObject"):
        return [("s3:GetObjectVersion" if version else "s3:GetObject", [_object(bucket, key)], {})]
    if operation in ("ListObjectsV2", "ListObjects"):
        return [("s3:ListBucket", [f"arn:aws:s3:::{bucket}"], {"s3:prefix": params.get("Prefix", "")})]
    if operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        return [("s3:PutObject", [_object(bucket, key)], {})]
    if operation == "AbortMultipartUpload":
        return [("s3:AbortMultipartUpload", [_object(bucket, key)], {})]
    if operation == "ListParts":
        return [("s3:ListMultipartUploadParts", [_object(bucket, key)], {})]
    if operation in ("CopyObject", "UploadPartCopy"):
        src_bucket, src_key, src_version = _copy_source(params["CopySource"])
        read = "s3:GetObjectVersion" if src_version else "s3:GetObject"
        return [(read, [_object(src_bucket, src_key)], {}), ("s3:PutObject", [_object(bucket, key)], {})]
    if operation == "DeleteObject":
        return [("s3:DeleteObjectVersion" if version else "s3:DeleteObject", [_object(bucket, key)], {})]
    if operation == "DeleteObjects":
        objects = params["Delete"]["Objects"]
        by_action: dict[str, list[str]] = {}
        for o in objects:
            action = "s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject"
            by_action.setdefault(action, []).append(_object(bucket, o["Key"]))
        return [(action, arns, {}) for action, arns in sorted(by_action.items())]
    raise Unmapped(f"S3.{operation}")


def _append(path: str, line: dict) -> None:
    # One write per line on an O_APPEND descriptor: lines from the driver's threads and the workers do not interleave.
    data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def register(client, path: str, principal: str) -> None:
    """Records every call `client` makes to `path`."""
    service = client.meta.service_model.service_name

    def before(params, model, context, **_):
        try:
            if service != "s3":
                raise Unmapped(f"{service}.{model.name}")
            context["iam_calls"] = authorisations(model.name, params)
        except (Unmapped, KeyError, TypeError) as err:
            context["iam_unmapped"] = f"{err.__class__.__name__}: {err}; parameters {sorted(params)}"

    def write(context, api: str, outcome: str) -> None:
        if "iam_unmapped" in context or "iam_calls" not in context:
            _append(path, {"unmapped": context.get("iam_unmapped", f"{service}.{api}: no parameters seen")})
            return
        for action, resources, condition in context["iam_calls"]:
            line = {"t": "", "principal": principal, "service": service, "action": action, "resources": resources,
                    "outcome": outcome, "api": api, "pid": os.getpid()}  # fmt: skip
            if condition:
                line["context"] = condition
            _append(path, line)

    def after(http_response, parsed, model, context, **_):
        status = http_response.status_code
        code = (parsed or {}).get("Error", {}).get("Code") or status
        write(context, model.name, f"error:{code}" if status >= 300 else "ok")

    def after_error(exception, context, event_name, **_):
        write(context, event_name.rsplit(".", 1)[-1], f"error:{type(exception).__name__}")

    client.meta.events.register_last("before-parameter-build", before)
    client.meta.events.register_last("after-call", after)
    client.meta.events.register_last("after-call-error", after_error)


def install(path: str, principal: str) -> None:
    """Every botocore client made from now on in this process records its calls (see the module's docstring)."""
    import botocore.session

    real = botocore.session.Session.create_client
    if getattr(real, "_records_calls", False):
        return

    def create_client(self, *args, **kwargs):
        client = real(self, *args, **kwargs)
        register(client, path, principal)
        return client

    create_client._records_calls = True  # type: ignore[attr-defined]
    create_client._real = real  # type: ignore[attr-defined]
    botocore.session.Session.create_client = create_client


def uninstall() -> None:
    import botocore.session

    current = botocore.session.Session.create_client
    if getattr(current, "_records_calls", False):
        botocore.session.Session.create_client = current._real  # type: ignore[attr-defined]


def worker_site_dir(folder: Path) -> Path:
    """A folder holding a `sitecustomize.py` that installs the recorder in every Python process started with it on
    PYTHONPATH and RECORD_ENV set (Spark's Python workers)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import importlib.util, os\n"
        f"if os.environ.get({RECORD_ENV!r}):\n"
        f"    spec = importlib.util.spec_from_file_location('s3_calls', {str(Path(__file__).resolve())!r})\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    spec.loader.exec_module(module)\n"
        f"    module.install(os.environ[{RECORD_ENV!r}], os.environ[{PRINCIPAL_ENV!r}])\n",
        encoding="utf-8",
    )
    return folder
