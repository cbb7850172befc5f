/**
 * The crash lease's port on SQS (core `queue/lease.ts`): ChangeMessageVisibilityBatch on the consumer's own queue.
 * Each call is abandoned (with the SDK's retries) after `callTimeoutMs`: a hanging endpoint must not keep the
 * invocation past its timeout, which would fail the whole batch, acknowledged records included. A change whose
 * answer was lost and whose retry applies it again is harmless: it sets the same timeout from a moment later.
 */
import { ChangeMessageVisibilityBatchCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { MessageVisibility, VisibilityChange } from "@ingest/core";

export class SqsMessageVisibility implements MessageVisibility {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly callTimeoutMs = 3_000,
  ) {}

  async change(changes: readonly VisibilityChange[]): Promise<readonly string[]> {
    if (changes.length === 0) return [];
    if (changes.length > 10) throw new RangeError(`at most 10 visibility changes per call, not ${changes.length}`);
    // Entry ids must be unique and [A-Za-z0-9_-]{1,80}: the position, mapped back to the message id.
    const out = await this.sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: this.queueUrl,
        Entries: changes.map((c, i) => ({
          Id: String(i),
          ReceiptHandle: c.receiptHandle,
          VisibilityTimeout: c.seconds,
        })),
      }),
      { abortSignal: AbortSignal.timeout(this.callTimeoutMs) },
    );
    const refused: string[] = [];
    for (const f of out.Failed ?? []) {
      const c = changes[Number(f.Id)];
      refused.push(c ? c.id : `(entry ${String(f.Id)})`);
    }
    // An entry SQS neither applied nor refused is not known to be applied.
    const answered = new Set([...(out.Successful ?? []).map((s) => s.Id), ...(out.Failed ?? []).map((f) => f.Id)]);
    changes.forEach((c, i) => {
      if (!answered.has(String(i))) refused.push(c.id);
    });
    return refused;
  }
}
