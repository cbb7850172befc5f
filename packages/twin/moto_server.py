"""The twin's moto server: moto 5.2.5 (.venv) with its S3 → EventBridge notifications made to match AWS's.

Run as `python moto_server.py -H 127.0.0.1 -p PORT` (the same arguments as `moto_server`). Patches, each a documented
AWS behaviour that moto gets wrong (packages/twin/README.md, "Known differences"):
- one "Object Created" event per upload: moto's CompleteMultipartUpload also emits the inner PutObject's event (two
  events for one multipart upload); AWS emits one, reason CompleteMultipartUpload;
- "Object Tags Added" only when tags are set: moto emits it on every PUT (its PUT handler stores an empty tag set);
- the detail's `reason` is the API (PutObject, POST Object, CopyObject, CompleteMultipartUpload, DeleteObject),
  `etag` is spelled as AWS spells it, and `sequencer` grows with each event (moto: "ObjectCreated", eTag, a constant);
- each DynamoDB request is atomic: moto's threaded server checks a condition and writes in two steps, so two
  concurrent conditional writes could both pass (DynamoDB never lets them); one lock serialises DynamoDB's requests.

And two routes of the twin's own, no AWS API: `POST /_twin/s3/put-objects` (BULK_PUT_PATH) writes many objects in one
request, each exactly as moto's PutObject handler writes it (same backend call, so the same key, bytes, ETag, CRC32
checksum, content type and S3 -> EventBridge event); `POST /_twin/s3/get-objects` (BULK_GET_PATH) reads many, each as
its GetObject handler reads it (by version id; NoSuchKey / NoSuchVersion). Only the twin's local Glue service calls
them, through the fault layer's proxy, which records each object as its own s3:PutObject / s3:GetObject(Version)
call (packages/twin/src/glue/bulk.ts).
"""

import base64
import copy
import itertools
import json
import os
import sys
import threading
from typing import Any

from moto import server
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import ServiceException
from moto.dynamodb.responses import DynamoHandler
from moto.s3 import models, notifications
from moto.s3.models import s3_backends
from moto.s3.utils import compute_checksum, metadata_from_headers
from moto.server import main

_REASONS = {
    notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT: "PutObject",
    notifications.S3NotificationEvent.OBJECT_CREATED_POST_EVENT: "POST Object",
    notifications.S3NotificationEvent.OBJECT_CREATED_COPY_EVENT: "CopyObject",
    notifications.S3NotificationEvent.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD_EVENT: "CompleteMultipartUpload",
    notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_EVENT: "DeleteObject",
}

_local = threading.local()
_sequencer = itertools.count(0x617F08299329D189)
_sequencer_lock = threading.Lock()


def _next_sequencer() -> str:
    with _sequencer_lock:
        return f"{next(_sequencer):016X}"


def _send_event_bridge_message(
    account_id: str, bucket: Any, event_name: str, key: Any
) -> None:
    """moto's own function (moto/s3/notifications.py), with AWS's reason, etag spelling and a growing sequencer."""
    try:
        from moto.core.utils import unix_time
        from moto.events.models import events_backends
        from moto.events.utils import _BASE_EVENT_MESSAGE

        event = copy.deepcopy(_BASE_EVENT_MESSAGE)
        event["detail-type"] = notifications._detail_type(event_name)
        event["source"] = "aws.s3"
        event["account"] = account_id
        event["time"] = unix_time()
        event["region"] = bucket.region_name
        event["resources"] = [bucket.arn]
        event["detail"] = {
            "version": "0",
            "bucket": {"name": bucket.name},
            "object": {
                "key": key.name,
                "size": key.size,
                "etag": key.etag.replace('"', ""),
                "version-id": key.version_id,
                "sequencer": _next_sequencer(),
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": _REASONS.get(event_name, event_name.split(":")[1]),
        }
        events_backend = events_backends[account_id][bucket.region_name]
        for event_bus in events_backend.event_buses.values():
            for rule in event_bus.rules.values():
                rule.send_to_targets(event, transform_input=False)
    except Exception as e:  # noqa: BLE001 - as moto: delivery is asynchronous on AWS, the API call never fails for it
        print(f"twin moto: S3 -> EventBridge delivery failed: {e!r}", file=sys.stderr)


_original_send_event = notifications.send_event


def _send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
    if getattr(_local, "completing", False) and event_name in (
        notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT,
        notifications.S3NotificationEvent.OBJECT_TAGGING_PUT_EVENT,
    ):
        return  # the inner PutObject of a CompleteMultipartUpload: AWS emits only the completion's event
    if (
        getattr(_local, "untagged", False)
        and event_name == notifications.S3NotificationEvent.OBJECT_TAGGING_PUT_EVENT
    ):
        return  # a PUT without tags: no "Object Tags Added" on AWS
    _original_send_event(account_id, event_name, bucket, key)


_original_complete = models.S3Backend.complete_multipart_upload
_original_put_tagging = models.S3Backend.put_object_tagging


def _complete_multipart_upload(self: Any, *args: Any, **kwargs: Any) -> Any:
    _local.completing = True
    try:
        key = _original_complete(self, *args, **kwargs)
    finally:
        _local.completing = False
    return key


def _put_object_tagging(
    self: Any, key: Any, tags: Any, *args: Any, **kwargs: Any
) -> Any:
    _local.untagged = not tags
    try:
        return _original_put_tagging(self, key, tags, *args, **kwargs)
    finally:
        _local.untagged = False


_dynamodb_lock = threading.Lock()
_original_dynamodb_call_action = DynamoHandler.call_action


def _dynamodb_call_action(self: Any) -> Any:
    with _dynamodb_lock:
        return _original_dynamodb_call_action(self)


BULK_PUT_PATH = "/_twin/s3/put-objects"
# What the twin's S3 client (AWS SDK for JavaScript v3) sends with a PutObject: a CRC32 checksum, by default.
_CHECKSUM_ALGORITHM = "CRC32"


def put_like_put_object(
    backend: Any, bucket_name: str, key_name: str, body: bytes, content_type: str
) -> Any:
    """What moto's PutObject handler (S3Response.put_object) does for the twin's PUT: no tags, ACL, lock or SSE headers."""
    bucket = backend.get_bucket(bucket_name)
    checksum = compute_checksum(body, algorithm=_CHECKSUM_ALGORITHM).decode("utf-8")
    key = backend.put_object(
        bucket_name, key_name, body, storage="STANDARD", checksum_value=checksum
    )
    key.set_metadata(metadata_from_headers({"Content-Type": content_type}))
    key.set_acl(bucket.acl)
    key.website_redirect_location = None
    key.checksum_algorithm = _CHECKSUM_ALGORITHM
    backend.put_object_tagging(key, {})
    return key


def bulk_put(request: dict[str, Any]) -> dict[str, Any]:
    """`{"bucket", "objects": [{"key", "contentType", "body": base64}]}` -> `{"objects": [{"key", "etag"}]}`, in order."""
    account = os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)
    backend = s3_backends[account]["aws"]
    bucket = request["bucket"]
    backend.get_bucket(bucket)  # NoSuchBucket before anything is written
    written = []
    for o in request["objects"]:
        key = put_like_put_object(
            backend, bucket, o["key"], base64.b64decode(o["body"]), o["contentType"]
        )
        written.append({"key": key.name, "etag": key.etag})
    return {"objects": written}


BULK_GET_PATH = "/_twin/s3/get-objects"


def bulk_get(request: dict[str, Any]) -> dict[str, Any]:
    """`{"bucket", "objects": [{"key", "versionId"?}]}` -> `{"objects": [{"key", "outcome", "body"?: base64}]}`.

    Each object as moto's GetObject handler (S3Response._get_key) finds it: `error:NoSuchKey` without a version id,
    `error:NoSuchVersion` with one, when there is no such object.
    """
    account = os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)
    backend = s3_backends[account]["aws"]
    bucket = request["bucket"]
    backend.get_bucket(
        bucket
    )  # NoSuchBucket for the whole request, as for each GetObject
    read = []
    for o in request["objects"]:
        version_id = o.get("versionId")
        key = backend.get_object(bucket, o["key"], version_id=version_id)
        if key is None:
            missing = "NoSuchKey" if version_id is None else "NoSuchVersion"
            read.append({"key": o["key"], "outcome": f"error:{missing}"})
        else:
            body = base64.b64encode(key.value).decode("ascii")
            read.append({"key": o["key"], "outcome": "ok", "body": body})
    return {"objects": read}


_ROUTES = {BULK_PUT_PATH: bulk_put, BULK_GET_PATH: bulk_get}


class _TwinRoutes:
    """moto's WSGI application, with the twin's routes (_ROUTES) answered here."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "app":
            object.__setattr__(self, name, value)
        else:
            setattr(self.app, name, value)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        route = _ROUTES.get(environ.get("PATH_INFO", ""))
        if route is None:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            return _answer(start_response, 405, {"code": "MethodNotAllowed"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            request = json.loads(environ["wsgi.input"].read(length))
            return _answer(start_response, 200, route(request))
        except ServiceException as e:
            status = 404 if e.code == "NoSuchBucket" else 400
            return _answer(
                start_response, status, {"code": e.code, "message": e.message}
            )
        except (ValueError, KeyError, TypeError) as e:
            return _answer(
                start_response, 400, {"code": "InvalidRequest", "message": repr(e)}
            )


def _answer(start_response: Any, status: int, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode("utf-8")
    reasons = {
        200: "OK",
        400: "Bad Request",
        404: "Not Found",
        405: "Method Not Allowed",
    }
    start_response(
        f"{status} {reasons.get(status, 'Error')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


_OriginalDispatcher = server.DomainDispatcherApplication


def _dispatcher(*args: Any, **kwargs: Any) -> _TwinRoutes:
    return _TwinRoutes(_OriginalDispatcher(*args, **kwargs))


def _patch() -> None:
    server.DomainDispatcherApplication = _dispatcher
    DynamoHandler.call_action = _dynamodb_call_action
    notifications._send_event_bridge_message = _send_event_bridge_message
    notifications.send_event = _send_event
    models.S3Backend.complete_multipart_upload = _complete_multipart_upload
    models.S3Backend.put_object_tagging = _put_object_tagging


if __name__ == "__main__":
    _patch()
    sys.exit(main(sys.argv[1:]))
