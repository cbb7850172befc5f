/**
 * Port-level metering for the in-memory simulation: what each handler invocation would cost on AWS, from the calls
 * it makes into the ledger, S3 and Glue (the AWS-semantics scenario counts the same things on the wire instead, see
 * sim/fake-aws.ts). DynamoDB request units per ledger method follow packages/adapters/src/dynamo-ledger.ts: an
 * upload item is < 1 KB (1 WRU per write), every write of an item in the pending/running index writes the index too
 * (+1 WRU, +2 when its index key changes: delete + put), a strongly consistent GetItem is 1 RRU, an index Query
 * 0.5 RRU per 4 KB read. A failed conditional write still consumes its WRU. A settle to processed/failed is one
 * conditional UpdateItem with no read first; a settle back to pending reads, then puts.
 */
import { HANDLER_MEMORY_MB } from "../../src/config/pipeline.js";
import type { Deps } from "../../src/ledger/ports.js";
import type { Usage } from "./cost.js";

/** Lambda: the handlers' memory (config: HANDLER_MEMORY_MB), and how long calls take (an estimate, see durationSeconds). */
export const LAMBDA_MODEL = {
  memoryGb: HANDLER_MEMORY_MB / 1024,
  baseSeconds: 0.05,
  dynamodbCallSeconds: 0.008,
  s3CallSeconds: 0.025,
  glueCallSeconds: 0.15,
  /** Ledger and S3 calls of one invocation run up to 32–64 at a time (mapLimit); 16 is the effective overlap used. */
  overlap: 16,
} as const;

export interface Meter {
  dynamodbCalls: number;
  s3Calls: number;
  glueCalls: number;
  sleptMs: number;
  writeUnits: number;
  readUnits: number;
  s3Get: number;
  s3Put: number;
}

export function newMeter(): Meter {
  return { dynamodbCalls: 0, s3Calls: 0, glueCalls: 0, sleptMs: 0, writeUnits: 0, readUnits: 0, s3Get: 0, s3Put: 0 };
}

/** Billed duration of one invocation: a base, the settle window's sleeps, and its calls with overlap. */
export function durationSeconds(m: Meter): number {
  const L = LAMBDA_MODEL;
  return (
    L.baseSeconds +
    m.sleptMs / 1000 +
    (m.dynamodbCalls * L.dynamodbCallSeconds + m.s3Calls * L.s3CallSeconds) / L.overlap +
    m.glueCalls * L.glueCallSeconds
  );
}

/** Adds one finished invocation to the usage (`portUnits`: false when DynamoDB and S3 are counted on the wire). */
export function billInvocation(u: Usage, m: Meter, portUnits = true): void {
  u.lambdaRequests++;
  u.lambdaGbSeconds += LAMBDA_MODEL.memoryGb * durationSeconds(m);
  if (!portUnits) return;
  u.dynamodbWriteUnits += m.writeUnits;
  u.dynamodbReadUnits += m.readUnits;
  u.s3GetRequests += m.s3Get;
  u.s3PutListRequests += m.s3Put;
}

const queryUnits = (items: number) => Math.max(0.5, Math.ceil(items / 4) * 0.5);

/** Request units of one ledger call, from its method, arguments and answer. */
function ledgerUnits(method: string, args: readonly unknown[], result: unknown): { w: number; r: number } {
  const ok =
    result === true || (typeof result === "object" && result !== null && "created" in result && result.created);
  const items = Array.isArray(result) ? result.length : 0;
  switch (method) {
    case "recordUpload":
      return ok ? { w: 2, r: 0 } : { w: 1, r: 1 };
    case "claimUpload":
      return ok ? { w: 3, r: 0 } : { w: 1, r: 0 };
    case "settleUpload":
      if ((args[2] as { status?: string } | undefined)?.status !== "pending")
        return ok ? { w: 2, r: 0 } : { w: 1, r: 0 };
      // back to pending: a read (none when the caller passes the record it read), then a conditional put whose index
      // key changes (RUNNING → PENDING: the item, an index delete and an index put)
      if (args[4] !== undefined) return ok ? { w: 3, r: 0 } : { w: 1, r: 0 };
      return ok ? { w: 3, r: 1 } : { w: 0, r: 1 };
    case "failPendingUpload":
    case "requeueUpload":
      return ok ? { w: 2, r: 1 } : { w: 0, r: 1 };
    case "listPending":
    case "listRunning":
      return { w: 0, r: queryUnits(items) };
    case "uploadsOfKey":
    case "listRuns":
      return { w: 0, r: Math.max(1, Math.ceil(items / 4)) };
    case "listUploads":
      return { w: 0, r: queryUnits(items) };
    default:
      // get*/runKeyOf*: one consistent GetItem; everything else one small conditional write.
      return method.startsWith("get") || method.startsWith("runKeyOf") ? { w: 0, r: 1 } : { w: 1, r: 0 };
  }
}

function metered<T extends object>(
  target: T,
  onCall: (method: string, result: unknown, args: readonly unknown[]) => void,
): T {
  return new Proxy(target, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const result: unknown = value.apply(obj, args);
        if (result instanceof Promise) {
          return result.then((r: unknown) => {
            onCall(String(prop), r, args);
            return r;
          });
        }
        onCall(String(prop), result, args);
        return result;
      };
    },
  });
}

/** `deps` whose calls are counted into `m` (a call that throws is not counted: a throttle is not billed). */
export function meteredDeps(deps: Deps, m: Meter): Deps {
  return {
    ...deps,
    ledger: metered(deps.ledger, (method, result, args) => {
      m.dynamodbCalls++;
      const { w, r } = ledgerUnits(method, args, result);
      m.writeUnits += w;
      m.readUnits += r;
    }),
    objects: metered(deps.objects, (method) => {
      m.s3Calls++;
      if (method === "putJson") m.s3Put++;
      else m.s3Get++;
    }),
    glue: metered(deps.glue, () => {
      m.glueCalls++;
    }),
    clock: {
      now: () => deps.clock.now(),
      sleep: (ms: number) => {
        m.sleptMs += ms;
        return deps.clock.sleep(ms);
      },
    },
  };
}
