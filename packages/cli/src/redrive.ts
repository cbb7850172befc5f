/**
 * `ingest redrive`: puts what fell out of the flow back into it.
 *  - DLQ messages go back to their source queue (ingest DLQ → ingest queue, recorder DLQ → recorder queue).
 *  - Failed uploads get a fresh attempt budget (ledger: failed → pending), then the next run is started the way
 *    the handlers do it (take the run slot or ask its holder to wake up): the core's startNextRun.
 */
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { GlueJobs, S3Objects } from "@ingest/adapters";
import { type Deps, newRunKey, type StartOutcome, startNextRun } from "@ingest/core";
import type { Target } from "./target.js";

export interface RedriveReport {
  readonly dlqMessagesMoved: { readonly ingest: number; readonly recorder: number };
  readonly uploadsRequeued: string[];
  readonly run: StartOutcome | null;
}

export async function moveMessages(target: Target, from: string, to: string): Promise<number> {
  let moved = 0;
  for (;;) {
    const r = await target.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: from, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }),
    );
    const messages = r.Messages ?? [];
    if (messages.length === 0) return moved;
    for (const m of messages) {
      await target.sqs.send(new SendMessageCommand({ QueueUrl: to, MessageBody: m.Body ?? "" }));
      await target.sqs.send(new DeleteMessageCommand({ QueueUrl: from, ReceiptHandle: m.ReceiptHandle }));
      moved++;
    }
  }
}

export function depsFor(target: Target): Deps {
  const quiet = () => undefined;
  return {
    ledger: target.ledger,
    objects: new S3Objects(target.s3),
    glue: new GlueJobs(target.glue, target.glueJob),
    clock: { now: () => new Date(), sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
    log: { info: quiet, warn: quiet, error: quiet },
    metrics: { add: quiet },
    newRunKey,
    bucket: target.bucket,
    // as the handlers: manifests in the control bucket (a start the CLI makes or repairs reads and writes them there)
    controlBucket: target.controlBucket,
  };
}

export async function redrive(target: Target, opts: { dlq: boolean; failed: boolean }): Promise<RedriveReport> {
  const dlqMessagesMoved = { ingest: 0, recorder: 0 };
  if (opts.dlq) {
    dlqMessagesMoved.ingest = await moveMessages(target, target.ingestDlqUrl, target.ingestQueueUrl);
    dlqMessagesMoved.recorder = await moveMessages(target, target.recorderDlqUrl, target.recorderQueueUrl);
  }
  const uploadsRequeued: string[] = [];
  let run: StartOutcome | null = null;
  if (opts.failed) {
    const now = new Date().toISOString();
    for (const u of await target.ledger.listUploads()) {
      if (u.status === "failed" && (await target.ledger.requeueUpload(u.uploadId, now))) uploadsRequeued.push(u.key);
    }
    if (uploadsRequeued.length > 0) run = await startNextRun(depsFor(target), target.config.runs);
  }
  return { dlqMessagesMoved, uploadsRequeued, run };
}
