/**
 * Reading the messages the ingest queue carries: EventBridge "Object Created" events from S3. Anything else (a test
 * message, another detail-type, a key outside input/*.csv, broken JSON) is reported as ignored with a reason; it
 * never fails the batch.
 */
import type { S3ObjectCreatedNotificationEvent } from "aws-lambda";
import { isInputKey } from "../config/pipeline.js";

export interface ObjectCreated {
  readonly bucket: string;
  /** As the event carries it (AWS and the emulator send it unencoded; `candidateKeys` also tries the decoded form). */
  readonly key: string;
  readonly etag: string | null;
  readonly versionId: string | null;
  readonly size: number | null;
  /** When EventBridge emitted the event: shown to users, never part of an upload's identity. */
  readonly time: string;
  /** S3's per-key event order (hex; compare with `compareSequencers`); null when the event has none. */
  readonly sequencer: string | null;
}

export type ParsedMessage =
  | { readonly kind: "object-created"; readonly event: ObjectCreated }
  | { readonly kind: "ignored"; readonly reason: string };

type LooseObject = Partial<S3ObjectCreatedNotificationEvent["detail"]["object"]> & { eTag?: string };
type LooseDetail = Partial<Omit<S3ObjectCreatedNotificationEvent["detail"], "object">> & { object?: LooseObject };

export function parseObjectCreated(body: string, expectedBucket: string): ParsedMessage {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return { kind: "ignored", reason: "body is not JSON" };
  }
  if (typeof doc !== "object" || doc === null) return { kind: "ignored", reason: "body is not an object" };
  const e = doc as Partial<S3ObjectCreatedNotificationEvent> & { Event?: string };
  if (e.Event === "s3:TestEvent") return { kind: "ignored", reason: "S3 test event" };
  if (e.source !== "aws.s3") return { kind: "ignored", reason: `source is ${String(e.source)}, not aws.s3` };
  if (e["detail-type"] !== "Object Created") {
    return { kind: "ignored", reason: `detail-type is ${String(e["detail-type"])}, not Object Created` };
  }
  const detail = e.detail as LooseDetail | undefined;
  const bucket = detail?.bucket?.name;
  const key = detail?.object?.key;
  if (typeof bucket !== "string" || typeof key !== "string") {
    return { kind: "ignored", reason: "event has no bucket name or object key" };
  }
  if (bucket !== expectedBucket) return { kind: "ignored", reason: `bucket ${bucket} is not ${expectedBucket}` };
  if (!isInputKey(key) && !candidateKeys(key).some(isInputKey)) {
    return { kind: "ignored", reason: `key ${key} is not under input/ with .csv` };
  }
  const object: LooseObject = detail?.object ?? {};
  // AWS says `etag`, the emulator `eTag`; the emulator's `time` is epoch seconds, AWS's an ISO string.
  const etag = object.etag ?? object.eTag ?? null;
  const rawTime: unknown = e.time;
  const time =
    typeof rawTime === "number"
      ? new Date(rawTime * 1000).toISOString()
      : typeof rawTime === "string"
        ? rawTime
        : new Date(0).toISOString();
  return {
    kind: "object-created",
    event: {
      bucket,
      key,
      etag,
      versionId: object["version-id"] ?? null,
      size: typeof object.size === "number" ? object.size : null,
      time,
      sequencer:
        typeof object.sequencer === "string" && /^[0-9A-Fa-f]+$/.test(object.sequencer) ? object.sequencer : null,
    },
  };
}

/**
 * The keys an event's key may stand for: as given, then URL-decoded ("+" as space) when that differs. S3's own
 * notification format URL-encodes keys; a decoded-only lookup would break keys that really contain "%" or "+".
 */
export function candidateKeys(key: string): string[] {
  let decoded: string;
  try {
    decoded = decodeURIComponent(key.replaceAll("+", " "));
  } catch {
    return [key];
  }
  return decoded === key ? [key] : [key, decoded];
}

/**
 * Orders two S3 event sequencers of one key, as S3 documents it: hexadecimal strings, compared after right-padding
 * the shorter with zeros (they may differ in length). Negative: `a` came first.
 */
export function compareSequencers(a: string, b: string): number {
  const width = Math.max(a.length, b.length);
  const pa = a.toUpperCase().padEnd(width, "0");
  const pb = b.toUpperCase().padEnd(width, "0");
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}
