/**
 * Stands in for Lambda's SQS trigger (event source mapping): each consumer gathers messages until the batch size or
 * the batching window, invokes the handler with a real SQSEvent, and deletes only what the handler acknowledged.
 *  - `batchItemFailures` is honoured (ReportBatchItemFailures on): listed messages stay and reappear after the
 *    visibility timeout; SQS's redrive moves them to the DLQ after maxReceiveCount receives.
 *  - A throw, or a run past the function timeout, fails the whole batch: nothing is deleted.
 *  - A failure entry whose id is empty or not in the batch also fails the whole batch (as Lambda does).
 *  - `concurrency` consumers poll at once, as Lambda's maximumConcurrency allows.
 */
import { randomUUID } from "node:crypto";
import { DeleteMessageBatchCommand, type Message, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
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
}

export interface PollerStats {
  invocations: number;
  recordsDelivered: number;
  recordsDeleted: number;
  recordsFailed: number;
  batchFailures: number;
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
    messageAttributes: {},
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

/** Which records to delete given the handler's answer; null = the whole batch failed. */
export function acknowledged(records: readonly SQSRecord[], response: unknown): SQSRecord[] | null {
  const failures = (response as SQSBatchResponse | undefined | null)?.batchItemFailures;
  if (!failures || failures.length === 0) return [...records];
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
  };
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private abort = new AbortController();
  private inFlight = 0;

  constructor(private readonly opts: PollerOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    for (let i = 0; i < this.opts.concurrency; i++) this.loops.push(this.consume(i));
  }

  /** Stops polling and waits for invocations in flight (their batches are acknowledged as usual). */
  async stop(): Promise<void> {
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

  /** One batch: up to batchSize records, gathered until the window (counted from the first record) closes. */
  private async gather(): Promise<Message[]> {
    const { batchSize, batchingWindowSeconds } = this.opts;
    const batch: Message[] = [];
    let bytes = 0;
    let closesAt: number | null = null;
    while (this.running && batch.length < batchSize) {
      // Long-poll while idle (1 s, so stop() is prompt); inside the window, short polls.
      const got = await this.receive(batchSize - batch.length, closesAt === null ? 1 : 0);
      for (const m of got) {
        batch.push(m);
        bytes += Buffer.byteLength(m.Body ?? "");
      }
      if (batch.length > 0 && closesAt === null) closesAt = Date.now() + batchingWindowSeconds * 1000;
      if (closesAt !== null && (Date.now() >= closesAt || bytes >= LAMBDA_PAYLOAD_LIMIT_BYTES * 0.9)) break;
      if (closesAt !== null && got.length === 0) await sleep(Math.min(100, Math.max(0, closesAt - Date.now())));
    }
    return batch;
  }

  private async consume(index: number): Promise<void> {
    while (this.running) {
      const batch = await this.gather();
      // Stopping: what was gathered is not invoked; it becomes visible again after the visibility timeout.
      if (batch.length === 0 || !this.running) continue;
      this.inFlight++;
      try {
        await this.invoke(batch, index);
      } finally {
        this.inFlight--;
      }
    }
  }

  private async invoke(batch: Message[], consumer: number): Promise<void> {
    const { name, queueArn, timeoutSeconds, handler, log } = this.opts;
    const records = batch.map((m) => toSqsRecord(m, queueArn));
    const event: SQSEvent = { Records: records };
    this.stats.invocations++;
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
      log?.warn(`${name}[${consumer}]: batchItemFailures names unknown ids: the whole batch is retried`);
      return;
    }
    this.stats.recordsFailed += records.length - toDelete.length;
    await this.deleteAll(toDelete);
    this.stats.recordsDeleted += toDelete.length;
    log?.info(`${name}[${consumer}]: ${records.length} record(s), ${records.length - toDelete.length} reported failed`);
  }

  private async deleteAll(records: readonly SQSRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i += 10) {
      const chunk = records.slice(i, i + 10);
      const r = await this.opts.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.opts.queueUrl,
          Entries: chunk.map((rec, j) => ({ Id: String(j), ReceiptHandle: rec.receiptHandle })),
        }),
      );
      for (const f of r.Failed ?? []) {
        this.opts.log?.warn(`${this.opts.name}: delete failed for one message: ${f.Message ?? f.Code ?? "?"}`);
      }
    }
  }
}
