/**
 * Stands in for Lambda's SQS trigger (event source mapping): each consumer gathers messages until the batch size or
 * the batching window, invokes the handler with a real SQSEvent, and deletes only what the handler acknowledged.
 *  - `batchItemFailures` is honoured (ReportBatchItemFailures on): listed messages stay and reappear after the
 *    visibility timeout; SQS's redrive moves them to the DLQ after maxReceiveCount receives.
 *  - A throw, or a run past the function timeout, fails the whole batch: nothing is deleted.
 *  - A failure entry whose id is empty or not in the batch also fails the whole batch (as Lambda does).
 *  - `concurrency` consumers poll at once, as Lambda's maximumConcurrency allows.
 *  - A batch is cut where its invocation payload (`{"Records":[...]}` as JSON, each record with its attributes and
 *    its JSON-escaped body — about 2.3x the body for an S3 event) would pass Lambda's 6 MB; what did not fit is the
 *    consumer's next batch.
 *  - The window: each consumer's next window begins as soon as its previous invocation completes (Lambda's documented
 *    rule); an idle consumer's window begins at the first record it receives.
 *  - A DeleteMessageBatch that fails (error answer or per-entry failures) is logged and counted; those messages come
 *    back after the visibility timeout, as on Lambda; the consumer goes on.
 */
import { randomUUID } from "node:crypto";
import { DeleteMessageBatchCommand, type Message, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { Context, SQSEvent, SQSRecord } from "aws-lambda";
import { LAMBDA_PAYLOAD_LIMIT_BYTES, TWIN_REGION } from "./constants.js";
import { messageOf } from "./errors.js";

export type SqsHandler = (event: SQSEvent, context?: Context) => Promise<unknown>;

export interface PollerLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface PollerOptions {
  readonly name: string;
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly batchSize: number;
  readonly batchingWindowSeconds: number;
  readonly concurrency: number;
  /** The function's timeout: past it the batch counts as failed (AWS would kill the invocation). */
  readonly timeoutSeconds: number;
  readonly handler: SqsHandler;
  readonly log?: PollerLog | undefined;
  /** Called after each invocation (the fault layer's `consumerRestart` hook). */
  readonly afterInvoke?: ((poller: QueuePoller) => void) | undefined;
}

export interface PollerStats {
  invocations: number;
  recordsDelivered: number;
  recordsDeleted: number;
  recordsFailed: number;
  batchFailures: number;
  /** Messages acknowledged by the handler whose delete failed (they come back after the visibility timeout). */
  deleteFailures: number;
  /** The largest invocation payload so far, in bytes. */
  largestPayloadBytes: number;
  /** Times the consumers were killed and restarted. */
  restarts: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function toSqsRecord(m: Message, queueArn: string): SQSRecord {
  const a = m.Attributes ?? {};
  return {
    messageId: m.MessageId ?? "",
    receiptHandle: m.ReceiptHandle ?? "",
    body: m.Body ?? "",
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? "1",
      SentTimestamp: a.SentTimestamp ?? String(Date.now()),
      SenderId: a.SenderId ?? "",
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [
        k,
        {
          ...(v.StringValue !== undefined ? { stringValue: v.StringValue } : {}),
          ...(v.BinaryValue !== undefined ? { binaryValue: Buffer.from(v.BinaryValue).toString("base64") } : {}),
          stringListValues: v.StringListValues ?? [],
          binaryListValues: (v.BinaryListValues ?? []).map((b) => Buffer.from(b).toString("base64")),
          dataType: v.DataType ?? "String",
        },
      ]),
    ),
    md5OfBody: m.MD5OfBody ?? "",
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: TWIN_REGION,
  };
}

function lambdaContext(name: string, timeoutSeconds: number): Context {
  const deadline = Date.now() + timeoutSeconds * 1000;
  const requestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: name,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${TWIN_REGION}:123456789012:function:${name}`,
    memoryLimitInMB: "1024",
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: `twin/${requestId}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** `{"Records":[` + `]}`: the invocation payload's envelope around its records. */
const PAYLOAD_ENVELOPE_BYTES = Buffer.byteLength('{"Records":[]}');

/** The bytes one record adds to the invocation payload (its JSON, plus the comma before it). */
export function recordPayloadBytes(record: SQSRecord): number {
  return Buffer.byteLength(JSON.stringify(record)) + 1;
}

/**
 * How many of `records` (in order) go into one invocation: at most `batchSize`, and at most Lambda's payload limit
 * counted as the invocation payload. At least one (a single message can never pass 6 MB: SQS caps bodies at 256 KiB).
 */
export function cutBatch(
  records: readonly SQSRecord[],
  batchSize: number,
  limitBytes: number = LAMBDA_PAYLOAD_LIMIT_BYTES,
): { count: number; bytes: number } {
  let bytes = PAYLOAD_ENVELOPE_BYTES - 1;
  let count = 0;
  for (const r of records) {
    if (count >= batchSize) break;
    const add = recordPayloadBytes(r);
    if (count > 0 && bytes + add > limitBytes) break;
    bytes += add;
    count++;
  }
  return { count, bytes };
}

/**
 * Which records to delete given the handler's answer; null = the whole batch failed. Lambda's rules: a missing or
 * null response, or a null/empty `batchItemFailures` list, is a full success; a `batchItemFailures` that is not a
 * list, or an entry whose `itemIdentifier` is empty, missing or not in the batch, fails the whole batch.
 */
export function acknowledged(records: readonly SQSRecord[], response: unknown): SQSRecord[] | null {
  const failures = (response as { batchItemFailures?: unknown } | undefined | null)?.batchItemFailures;
  if (failures === undefined || failures === null) return [...records];
  if (!Array.isArray(failures)) return null;
  if (failures.length === 0) return [...records];
  const ids = new Set(records.map((r) => r.messageId));
  const failed = new Set<string>();
  for (const f of failures) {
    const id = f?.itemIdentifier;
    if (typeof id !== "string" || id === "" || !ids.has(id)) return null;
    failed.add(id);
  }
  return records.filter((r) => !failed.has(r.messageId));
}

export class QueuePoller {
  readonly stats: PollerStats = {
    invocations: 0,
    recordsDelivered: 0,
    recordsDeleted: 0,
    recordsFailed: 0,
    batchFailures: 0,
    deleteFailures: 0,
    largestPayloadBytes: 0,
    restarts: 0,
  };
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private abort = new AbortController();
  private inFlight = 0;
  private restarting = false;
  private closed = false;

  constructor(private readonly opts: PollerOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.closed = false;
    this.abort = new AbortController();
    for (let i = 0; i < this.opts.concurrency; i++) this.loops.push(this.consume(i));
  }

  /**
   * Kills and restarts the consumers (the fault layer's `consumerRestart`): what they had received but not yet
   * invoked is abandoned and comes back after the visibility timeout; invocations in flight finish.
   */
  async restart(): Promise<void> {
    if (!this.running || this.restarting) return;
    this.restarting = true;
    try {
      this.stats.restarts++;
      await this.halt();
      if (!this.closed) this.start();
    } finally {
      this.restarting = false;
    }
  }

  /** Stops polling and waits for invocations in flight (their batches are acknowledged as usual). */
  async stop(): Promise<void> {
    this.closed = true;
    await this.halt();
  }

  private async halt(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await Promise.allSettled(this.loops);
    this.loops.length = 0;
  }

  get busy(): boolean {
    return this.inFlight > 0;
  }

  private async receive(max: number, waitSeconds: number): Promise<Message[]> {
    try {
      const r = await this.opts.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.opts.queueUrl,
          MaxNumberOfMessages: Math.min(10, max),
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ["All"],
          MessageAttributeNames: ["All"],
        }),
        { abortSignal: this.abort.signal },
      );
      return r.Messages ?? [];
    } catch (e) {
      if (!this.running) return [];
      this.opts.log?.warn(`${this.opts.name}: ReceiveMessage failed: ${messageOf(e)}`);
      await sleep(500);
      return [];
    }
  }

  /**
   * One batch: up to batchSize records and 6 MB of invocation payload, gathered until the window closes. The window
   * began when this consumer's previous invocation completed (`windowFrom`); when it has passed with nothing
   * gathered, it begins again at the first record. `carry` holds what the previous cut left over.
   */
  private async gather(carry: Message[], windowFrom: number): Promise<{ batch: Message[]; rest: Message[] }> {
    const { batchSize, batchingWindowSeconds, queueArn } = this.opts;
    const windowMs = batchingWindowSeconds * 1000;
    const held: Message[] = [...carry];
    let bytes = PAYLOAD_ENVELOPE_BYTES - 1;
    for (const m of held) bytes += recordPayloadBytes(toSqsRecord(m, queueArn));
    const open = () => Date.now() < windowFrom + windowMs;
    let closesAt: number | null = held.length > 0 || open() ? windowFrom + windowMs : null;
    while (this.running && held.length < batchSize && bytes <= LAMBDA_PAYLOAD_LIMIT_BYTES) {
      if (closesAt !== null && Date.now() >= closesAt) {
        if (held.length > 0) break;
        closesAt = null; // the window passed with nothing: idle
      }
      // Long-poll while nothing is held (1 s, so stop() is prompt); with records held, short polls.
      const got = await this.receive(batchSize - held.length, held.length === 0 ? 1 : 0);
      for (const m of got) {
        held.push(m);
        bytes += recordPayloadBytes(toSqsRecord(m, queueArn));
      }
      if (held.length > 0 && closesAt === null) closesAt = Date.now() + windowMs; // idle: begins at the first record
      if (held.length > 0 && got.length === 0) await sleep(Math.min(100, Math.max(0, (closesAt ?? 0) - Date.now())));
    }
    const records = held.map((m) => toSqsRecord(m, queueArn));
    const { count } = cutBatch(records, batchSize);
    return { batch: held.slice(0, count), rest: held.slice(count) };
  }

  private async consume(index: number): Promise<void> {
    let carry: Message[] = [];
    // A new consumer is idle: its first window begins at its first record.
    let windowFrom = Number.NEGATIVE_INFINITY;
    while (this.running) {
      const { batch, rest } = await this.gather(carry, windowFrom);
      carry = rest;
      // Stopping: what was gathered is not invoked; it becomes visible again after the visibility timeout.
      if (batch.length === 0 || !this.running) continue;
      this.inFlight++;
      try {
        await this.invoke(batch, index);
      } catch (e) {
        // Never let one invocation's bookkeeping end the consumer (Lambda's poller carries on).
        this.opts.log?.warn(`${this.opts.name}[${index}]: ${messageOf(e)}`);
      } finally {
        this.inFlight--;
        windowFrom = Date.now();
      }
      this.opts.afterInvoke?.(this);
    }
  }

  private async invoke(batch: Message[], consumer: number): Promise<void> {
    const { name, queueArn, timeoutSeconds, handler, log } = this.opts;
    const records = batch.map((m) => toSqsRecord(m, queueArn));
    const event: SQSEvent = { Records: records };
    this.stats.invocations++;
    this.stats.largestPayloadBytes = Math.max(this.stats.largestPayloadBytes, cutBatch(records, records.length).bytes);
    this.stats.recordsDelivered += records.length;
    let response: unknown;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${timeoutSeconds} s (AWS would stop the invocation)`)),
          timeoutSeconds * 1000,
        );
      });
      response = await Promise.race([handler(event, lambdaContext(name, timeoutSeconds)), timeout]);
    } catch (e) {
      this.stats.batchFailures++;
      this.stats.recordsFailed += records.length;
      log?.warn(
        `${name}[${consumer}]: invocation of ${records.length} record(s) failed, none deleted: ${messageOf(e)}`,
      );
      return;
    } finally {
      clearTimeout(timer);
    }
    const toDelete = acknowledged(records, response);
    if (toDelete === null) {
      this.stats.batchFailures++;
      this.stats.recordsFailed += records.length;
      log?.warn(
        `${name}[${consumer}]: invalid batchItemFailures (not a list, or unknown/empty ids): the whole batch is retried`,
      );
      return;
    }
    this.stats.recordsFailed += records.length - toDelete.length;
    const deleted = await this.deleteAll(toDelete);
    this.stats.recordsDeleted += deleted;
    log?.info(`${name}[${consumer}]: ${records.length} record(s), ${records.length - toDelete.length} reported failed`);
  }

  /** Deletes acknowledged messages, 10 per call; returns how many were deleted. Failures are logged and counted. */
  private async deleteAll(records: readonly SQSRecord[]): Promise<number> {
    let deleted = 0;
    for (let i = 0; i < records.length; i += 10) {
      const chunk = records.slice(i, i + 10);
      try {
        const r = await this.opts.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: this.opts.queueUrl,
            Entries: chunk.map((rec, j) => ({ Id: String(j), ReceiptHandle: rec.receiptHandle })),
          }),
        );
        const failed = r.Failed ?? [];
        deleted += chunk.length - failed.length;
        this.stats.deleteFailures += failed.length;
        for (const f of failed) {
          this.opts.log?.warn(`${this.opts.name}: delete failed for one message: ${f.Message ?? f.Code ?? "?"}`);
        }
      } catch (e) {
        this.stats.deleteFailures += chunk.length;
        this.opts.log?.warn(
          `${this.opts.name}: DeleteMessageBatch of ${chunk.length} failed (they come back after the visibility timeout): ${messageOf(e)}`,
        );
      }
    }
    return deleted;
  }
}
