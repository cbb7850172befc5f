/**
 * S3 → EventBridge → queue delivery with faults. moto delivers an upload's event to the queue synchronously inside
 * PutObject; AWS delivers it "typically in seconds, sometimes a minute or longer", at least once, in no particular
 * order. When any S3-event fault is on, the twin points the "Object Created" rule at a relay queue of its own (the
 * rule's pattern is unchanged) and this relay moves each event to the ingest queue, drawing per event: dropped,
 * delivered twice, delayed by up to `s3EventDelayMs`, or held back until the next event has gone (reordered).
 * The relay talks to the emulator directly: it is AWS's own delivery, not a principal of the pipeline.
 */
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { messageOf } from "../errors.js";
import type { FaultDice } from "./config.js";

const S3_EVENT_KINDS = ["s3EventDrop", "s3EventDuplicate", "s3EventDelay", "s3EventReorder"] as const;

export function s3EventFaultsOn(dice: FaultDice): boolean {
  return S3_EVENT_KINDS.some((k) => dice.rate(k) > 0);
}

export interface RelayOptions {
  readonly sqs: SQSClient;
  readonly fromUrl: string;
  readonly toUrl: string;
  readonly dice: FaultDice;
  readonly log?: { warn(m: string): void } | undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class S3EventRelay {
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly abort = new AbortController();
  private readonly timers = new Set<NodeJS.Timeout>();
  private held: { body: string; timer: NodeJS.Timeout } | null = null;
  private readonly pending = new Set<Promise<void>>();
  readonly stats = { received: 0, delivered: 0, dropped: 0, duplicated: 0, delayed: 0, reordered: 0 };

  constructor(private readonly opts: RelayOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops receiving; events already taken are delivered (delays cut short) so nothing is lost by stopping. */
  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await this.loop;
    for (const t of this.timers) t.unref();
    await Promise.allSettled([...this.pending]);
  }

  private async run(): Promise<void> {
    const { sqs, fromUrl } = this.opts;
    while (this.running) {
      let got: Message[] = [];
      try {
        const r = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: fromUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
          { abortSignal: this.abort.signal },
        );
        got = r.Messages ?? [];
      } catch (e) {
        if (!this.running) return;
        this.opts.log?.warn(`s3 event relay: receive failed: ${messageOf(e)}`);
        await sleep(500);
        continue;
      }
      for (const m of got) this.take(m.Body ?? "");
      if (got.length) {
        await sqs
          .send(
            new DeleteMessageBatchCommand({
              QueueUrl: fromUrl,
              Entries: got.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? "" })),
            }),
          )
          .catch((e: unknown) => this.opts.log?.warn(`s3 event relay: delete failed: ${messageOf(e)}`));
      }
    }
  }

  private take(body: string): void {
    const { dice } = this.opts;
    this.stats.received++;
    if (dice.roll("s3EventDrop")) {
      this.stats.dropped++;
      return;
    }
    const copies = dice.roll("s3EventDuplicate") ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const delay = dice.roll("s3EventDelay") ? dice.uniform("s3EventDelay", dice.setting("s3EventDelayMs")) : 0;
      if (delay > 0) this.stats.delayed++;
      this.later(delay, () => this.deliverInOrder(body));
    }
  }

  /** Sends now, unless reordering holds this one back until the next event (or 2 s) has gone. */
  private deliverInOrder(body: string): void {
    const { dice } = this.opts;
    if (!this.held && dice.roll("s3EventReorder")) {
      this.stats.reordered++;
      const timer = setTimeout(() => this.release(), 2_000);
      this.held = { body, timer };
      return;
    }
    this.send(body);
    this.release();
  }

  private release(): void {
    const h = this.held;
    if (!h) return;
    this.held = null;
    clearTimeout(h.timer);
    this.send(h.body);
  }

  private later(ms: number, fn: () => void): void {
    if (ms <= 0) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private send(body: string): void {
    const p = this.opts.sqs
      .send(new SendMessageCommand({ QueueUrl: this.opts.toUrl, MessageBody: body }))
      .then(() => {
        this.stats.delivered++;
      })
      .catch((e: unknown) => this.opts.log?.warn(`s3 event relay: send failed: ${messageOf(e)}`))
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }
}
