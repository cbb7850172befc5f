/**
 * Reading the final state for the checker, straight from the emulator and the Glue service, never through the
 * pipeline's status code: ListObjectVersions, a consistent Scan of the ledger table (raw items), the output and
 * stats objects, the queues' depths. Also quiescence: waiting (bounded) until nothing is left to do.
 */
import { type AttributeValue, type DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import { GetObjectCommand, ListObjectsV2Command, ListObjectVersionsCommand, type S3Client } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { PROCESSED_PREFIX, REJECTED_PREFIX, STATS_PREFIX } from "@ingest/core";
import type { GlueRunEntry, LedgerItem, OutputFolder, S3VersionEntry } from "./check.js";
import { markerOfEmail } from "./workload.js";

/** DynamoDB's wire format → plain values (the checker reads raw items; no pipeline code in between). */
export function unmarshall(av: AttributeValue): unknown {
  if (av.S !== undefined) return av.S;
  if (av.N !== undefined) return Number(av.N);
  if (av.BOOL !== undefined) return av.BOOL;
  if (av.NULL !== undefined) return null;
  if (av.L !== undefined) return av.L.map(unmarshall);
  if (av.M !== undefined) return unmarshallItem(av.M);
  if (av.SS !== undefined) return [...av.SS];
  if (av.NS !== undefined) return av.NS.map(Number);
  return undefined;
}

export function unmarshallItem(item: Record<string, AttributeValue>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, unmarshall(v)]));
}

export async function scanLedger(dynamo: DynamoDBClient, table: string): Promise<LedgerItem[]> {
  const out: LedgerItem[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const r = await dynamo.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }));
    for (const item of r.Items ?? []) out.push(unmarshallItem(item));
    start = r.LastEvaluatedKey;
  } while (start);
  return out;
}

const unquote = (e: string | undefined) => (e ? e.replaceAll('"', "") : null);

export async function listVersions(s3: S3Client, bucket: string, prefix: string): Promise<S3VersionEntry[]> {
  const out: S3VersionEntry[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    const r = await s3.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        Prefix: prefix,
        KeyMarker: keyMarker,
        VersionIdMarker: versionMarker,
      }),
    );
    for (const v of r.Versions ?? []) {
      out.push({
        key: v.Key ?? "",
        versionId: v.VersionId && v.VersionId !== "null" ? v.VersionId : null,
        etag: unquote(v.ETag),
        lastModified: (v.LastModified ?? new Date(0)).toISOString(),
        isLatest: v.IsLatest === true,
        deleteMarker: false,
        size: v.Size ?? 0,
      });
    }
    for (const d of r.DeleteMarkers ?? []) {
      out.push({
        key: d.Key ?? "",
        versionId: d.VersionId && d.VersionId !== "null" ? d.VersionId : null,
        etag: null,
        lastModified: (d.LastModified ?? new Date(0)).toISOString(),
        isLatest: d.IsLatest === true,
        deleteMarker: true,
        size: 0,
      });
    }
    if (!r.IsTruncated) break;
    keyMarker = r.NextKeyMarker;
    versionMarker = r.NextVersionIdMarker;
  }
  return out;
}

async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = r.NextContinuationToken;
  } while (token);
  return keys;
}

async function getText(s3: S3Client, bucket: string, key: string): Promise<string> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await r.Body?.transformToString("utf8")) ?? "";
}

/** CSV records (RFC 4180: quoted fields may hold commas, quotes and line breaks). */
export function csvRecords(text: string): string[][] {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let quoted = false;
  let any = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
      continue;
    }
    if (c === '"') {
      quoted = true;
      any = true;
    } else if (c === ",") {
      record.push(field);
      field = "";
      any = true;
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      if (any || field !== "") records.push([...record, field]);
      record = [];
      field = "";
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (any || field !== "") records.push([...record, field]);
  return records;
}

/** Every output folder under processed/ (one per upload: `.../v=<tag>/`), its rows and whose rows they are. */
export async function readOutputs(
  s3: S3Client,
  bucket: string,
): Promise<{ outputs: OutputFolder[]; rejected: OutputFolder[]; stats: unknown[] }> {
  const keys: string[] = [];
  for (const prefix of [PROCESSED_PREFIX, REJECTED_PREFIX, STATS_PREFIX])
    keys.push(...(await listKeys(s3, bucket, prefix)));
  const folders = new Map<string, string[]>();
  const statsKeys: string[] = [];
  for (const k of keys) {
    if (k.startsWith(STATS_PREFIX)) {
      if (k.endsWith(".json")) statsKeys.push(k);
      continue;
    }
    const m = /^(.*\/v=[^/]+\/)/.exec(k);
    if (!m?.[1]) continue;
    folders.set(m[1], [...(folders.get(m[1]) ?? []), k]);
  }
  const outputs: OutputFolder[] = [];
  const rejected: OutputFolder[] = [];
  for (const [prefix, files] of folders) {
    const isRejected = prefix.startsWith(REJECTED_PREFIX);
    let rows = 0;
    let unmarked = 0;
    const markers = new Set<number>();
    for (const f of files.filter((x) => /\/part-[^/]*\.csv$/.test(x)).sort()) {
      const [header, ...data] = csvRecords(await getText(s3, bucket, f));
      rows += data.length;
      if (isRejected) continue;
      const email = header?.indexOf("email") ?? -1;
      for (const r of data) {
        const marker = email >= 0 ? markerOfEmail(r[email] ?? "") : null;
        if (marker === null) unmarked++;
        else markers.add(marker);
      }
    }
    const folder: OutputFolder = {
      prefix,
      rows,
      markers: [...markers].sort((a, b) => a - b),
      unmarked,
      success: files.includes(`${prefix}_SUCCESS`),
    };
    (isRejected ? rejected : outputs).push(folder);
  }
  const stats: unknown[] = [];
  for (const k of statsKeys) {
    try {
      stats.push(JSON.parse(await getText(s3, bucket, k)));
    } catch {
      stats.push({ unreadable: k });
    }
  }
  return { outputs, rejected, stats };
}

export interface QueueDepth {
  readonly name: string;
  readonly visible: number;
  readonly inFlight: number;
  readonly delayed: number;
}

export async function queueDepths(sqs: SQSClient, queues: Readonly<Record<string, string>>): Promise<QueueDepth[]> {
  const out: QueueDepth[] = [];
  for (const [name, url] of Object.entries(queues)) {
    const { Attributes: a } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: [
          "ApproximateNumberOfMessages",
          "ApproximateNumberOfMessagesNotVisible",
          "ApproximateNumberOfMessagesDelayed",
        ],
      }),
    );
    out.push({
      name,
      visible: Number(a?.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(a?.ApproximateNumberOfMessagesNotVisible ?? 0),
      delayed: Number(a?.ApproximateNumberOfMessagesDelayed ?? 0),
    });
  }
  return out;
}

export interface QuiescenceProbe {
  /** The work queues (not the DLQs): empty when quiet. */
  readonly queues: () => Promise<QueueDepth[]>;
  readonly ledger: () => Promise<LedgerItem[]>;
  readonly glueRuns: () => GlueRunEntry[];
  /** Anything else still in flight (e.g. the fault layer's delayed events). */
  readonly extra?: () => Promise<string[]> | string[];
}

/** What is still going on; empty when quiet. */
export async function notQuiet(probe: QuiescenceProbe): Promise<string[]> {
  const out: string[] = [];
  for (const q of await probe.queues()) {
    const n = q.visible + q.inFlight + q.delayed;
    if (n > 0) out.push(`${q.name} queue holds ${n} message(s)`);
  }
  const active = probe.glueRuns().filter((g) => g.completedOn === null);
  if (active.length > 0) out.push(`${active.length} Glue run(s) active`);
  const items = await probe.ledger();
  const open = items.filter((i) => i.type === "upload" && i.status !== "processed" && i.status !== "failed");
  if (open.length > 0) out.push(`${open.length} upload(s) pending or running`);
  const runs = items.filter((i) => i.type === "run" && (i.state === "starting" || i.state === "running"));
  if (runs.length > 0) out.push(`${runs.length} run(s) starting or running in the ledger`);
  const slot = items.find((i) => i.pk === "SLOT");
  if (slot && typeof slot.holder === "string") out.push(`run slot held by ${slot.holder}`);
  if (probe.extra) out.push(...(await probe.extra()));
  return out;
}

/** Waits until `notQuiet` is empty on `stable` polls in a row, or the time is up. */
export async function waitQuiet(
  probe: QuiescenceProbe,
  opts: {
    timeoutMs: number;
    everyMs?: number;
    stable?: number;
    onPoll?: (left: string[]) => void;
    signal?: AbortSignal | undefined;
  },
): Promise<{ reached: boolean; waitedMs: number; notQuiet: string[] }> {
  const t0 = Date.now();
  const every = opts.everyMs ?? 1000;
  const stable = opts.stable ?? 3;
  let quiet = 0;
  let left: string[] = [];
  for (;;) {
    try {
      left = await notQuiet(probe);
    } catch (e) {
      left = [`could not read the state: ${e instanceof Error ? e.message : String(e)}`];
    }
    opts.onPoll?.(left);
    quiet = left.length === 0 ? quiet + 1 : 0;
    if (quiet >= stable) return { reached: true, waitedMs: Date.now() - t0, notQuiet: [] };
    if (Date.now() - t0 > opts.timeoutMs) return { reached: false, waitedMs: Date.now() - t0, notQuiet: left };
    if (opts.signal?.aborted) return { reached: false, waitedMs: Date.now() - t0, notQuiet: ["interrupted", ...left] };
    await new Promise((r) => setTimeout(r, every));
  }
}
