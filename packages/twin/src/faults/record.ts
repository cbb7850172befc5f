/**
 * The AWS call record (contract: /work/wt/_notes/CALLS.md, summarised in packages/twin/README.md): one JSON object
 * per line for every AWS call that passed through the fault layer's proxy —
 * {"t","principal","service","action","resources","outcome"} — written to `callRecordPath(stateDir)`.
 */
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname, join } from "node:path";
import type { FaultKind } from "./config.js";
import type { Principal } from "./principals.js";

export interface CallLine {
  /** When the call was answered (or the fault struck), ISO 8601 with ms. */
  readonly t: string;
  readonly principal: Principal;
  /** IAM service prefix: s3, dynamodb, sqs, events, glue, cloudwatch, ... */
  readonly service: string;
  /** IAM action, e.g. `s3:GetObject`, `dynamodb:UpdateItem`, `glue:StartJobRun`. */
  readonly action: string;
  /** IAM resource ARNs (account 123456789012, us-east-1); `*` where IAM has no resource-level permission. */
  readonly resources: readonly string[];
  /** `ok`, `error:<AWS error code>`, or `fault:<kind>` when the layer injected a fault on this call. */
  readonly outcome: "ok" | `error:${string}` | `fault:${FaultKind}`;
}

/** Where the twin whose state folder is `stateDir` (`.twin/` or a test's folder) writes its call record. */
export function callRecordPath(stateDir: string): string {
  return join(stateDir, "calls.jsonl");
}

/** Appends call lines to a file (truncated when the recorder opens it: one twin's calls per file). */
export class CallRecorder {
  private readonly out: WriteStream;
  private closed = false;
  lines = 0;

  constructor(readonly file: string) {
    mkdirSync(dirname(file), { recursive: true });
    this.out = createWriteStream(file, { flags: "w" });
  }

  /** Appends one line (ignored once closed: calls still in flight when the twin stops). */
  write(line: CallLine): void {
    if (this.closed) return;
    this.lines++;
    this.out.write(`${JSON.stringify(line)}\n`);
  }

  /** Flushes and closes the file. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.out.end(() => resolve()));
  }
}

/** Reads a call record back (tests, the IAM check): one CallLine per non-empty line. */
export function parseCallRecord(text: string): CallLine[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l, i) => {
      try {
        return JSON.parse(l) as CallLine;
      } catch (e) {
        throw new Error(`call record line ${i + 1} is not JSON: ${(e as Error).message}`);
      }
    });
}
