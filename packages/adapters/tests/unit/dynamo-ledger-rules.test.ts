/**
 * DynamoLedger's own shapes, pinned with literal values: the table CreateTable gets, an upload's keys and index
 * partition (SHA-256 of its id, computed independently), the breaker and the reconciler's position on the fake
 * DynamoDB of tests/helpers/fake-aws.ts.
 */
import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { HEALTHY, LEDGER_TABLE, newUploadRecord, settledRecord, toUpload, type UploadRecord } from "@ingest/core";
import { describe, expect, it } from "vitest";
import { runRecord } from "../../../core/tests/helpers/records.js";
import { DynamoLedger, indexShardOf, ledgerTableInput, uploadItem, uploadKey } from "../../src/dynamo-ledger.js";
import { FakeAws, type RequestFault } from "../helpers/fake-aws.js";

function fakeLedger() {
  const fake = new FakeAws({
    now: () => Date.parse("2026-04-01T10:00:00Z"),
    random: () => 0.5,
    tableName: "ledger",
    schema: { hashKey: LEDGER_TABLE.hashKey, rangeKey: LEDGER_TABLE.rangeKey, indexes: [LEDGER_TABLE.pendingIndex] },
    job: { name: "job", maxConcurrentRuns: 1, workerType: "G.1X", numberOfWorkers: 10, timeoutMinutes: 120 },
  });
  return new DynamoLedger({ client: fake.clients().dynamodb, tableName: "ledger" });
}

describe("DynamoLedger shapes", () => {
  it("creates the table on pk/sk with the sparse 'pending' index on gsi1pk/gsi1sk, on demand", () => {
    expect(ledgerTableInput("t")).toEqual({
      TableName: "t",
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: ["pk", "sk", "gsi1pk", "gsi1sk"].map((AttributeName) => ({
        AttributeName,
        AttributeType: "S",
      })),
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: "pending",
          KeySchema: [
            { AttributeName: "gsi1pk", KeyType: "HASH" },
            { AttributeName: "gsi1sk", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        },
      ],
    });
  });

  it("keys an upload by bucket/key and version tag, split at the last '@'; refuses an id without one", () => {
    expect(uploadKey("b/input/a@b.csv@20260401T100000Z-e1")).toEqual({
      pk: "UPLOAD#b/input/a@b.csv",
      sk: "20260401T100000Z-e1",
    });
    expect(() => uploadKey("no-tag")).toThrow(new RangeError("not an upload id: no-tag"));
  });

  it("spreads uploads over the 16 index partitions by the first 32 bits of the SHA-256 of their id", () => {
    // sha256("data-bucket/input/a.csv@t1") starts 5c428444 (→ 4), sha256("data-bucket/input/b.csv@t2") 93a3053c (→ 12)
    expect(indexShardOf("data-bucket/input/a.csv@t1")).toBe(4);
    expect(indexShardOf("data-bucket/input/b.csv@t2")).toBe(12);
  });
});

describe("DynamoLedger: the breaker and the reconciler's position", () => {
  it("a fresh table is healthy; failures count per run; a healthy run resets the count and keeps the last failure time", async () => {
    const l = fakeLedger();
    expect(await l.getHealth()).toEqual(HEALTHY);

    await l.recordRunHealth("r1", "system-failure", "2026-04-01T10:00:00.000Z");
    expect(await l.recordRunHealth("r2", "system-failure", "2026-04-01T10:05:00.000Z")).toEqual({
      consecutiveSystemFailures: 2,
      lastRunKey: "r2",
      lastFailureAt: "2026-04-01T10:05:00.000Z",
    });
    expect(await l.recordRunHealth("r3", "healthy", "2026-04-01T10:09:00.000Z")).toEqual({
      consecutiveSystemFailures: 0,
      lastRunKey: "r3",
      lastFailureAt: "2026-04-01T10:05:00.000Z",
    });
    expect(await l.getHealth()).toEqual({
      consecutiveSystemFailures: 0,
      lastRunKey: "r3",
      lastFailureAt: "2026-04-01T10:05:00.000Z",
    });
  });

  it("no position until one is saved; a saved position reads back as it was, nulls included", async () => {
    const l = fakeLedger();
    expect(await l.getReconcilerPosition()).toBeNull();

    const mid = {
      afterKey: "input/k.csv",
      savedAt: "2026-04-01T10:00:00.000Z",
      passStartedAt: "2026-04-01T09:45:00.000Z",
      lastPassEndedAt: null,
    };
    await l.saveReconcilerPosition(mid);
    expect(await l.getReconcilerPosition()).toEqual(mid);

    const ended = { ...mid, afterKey: null, lastPassEndedAt: "2026-04-01T10:00:00.000Z" };
    await l.saveReconcilerPosition(ended);
    expect(await l.getReconcilerPosition()).toEqual(ended);
  });
});

// ── On the wire: races, lost answers, refusals, index pages (the fake's onRequest hook) ─────────────────────────────

const T0 = Date.parse("2026-04-01T10:00:00Z");
/** An explicit undefined, as an untyped caller would pass it. */
const ABSENT = undefined as never;
const AT = "2026-04-01T10:00:00.000Z";
const LATER = "2026-04-01T10:00:05.000Z";
/** The slot as a fresh table or a release leaves it. */
const FREE_SLOT = { holder: null, takenAt: null, wakeup: false, launched: false, launchedAt: null };
const PROCESSED = {
  status: "processed",
  output: "out/a",
  rejectedOutput: null,
  rowsRead: 2,
  rowsProcessed: 2,
  rowsRejected: 0,
} as const;

/** A fake table on a clock the test moves, with its ledger and the requests each operation sent. */
function wire() {
  let now = T0;
  const fake = new FakeAws({
    now: () => now,
    random: () => 0.5,
    tableName: "ledger",
    schema: { hashKey: LEDGER_TABLE.hashKey, rangeKey: LEDGER_TABLE.rangeKey, indexes: [LEDGER_TABLE.pendingIndex] },
    job: { name: "job", maxConcurrentRuns: 1, workerType: "G.1X", numberOfWorkers: 10, timeoutMinutes: 120 },
  });
  const sent: { op: string; input: Record<string, unknown> }[] = [];
  const hooks: ((op: string, input: Record<string, unknown>) => Promise<RequestFault> | RequestFault)[] = [];
  fake.onRequest = async (_service, op, input) => {
    sent.push({ op, input });
    const hook = hooks.shift();
    return hook ? hook(op, input) : undefined;
  };
  const ledger = new DynamoLedger({ client: fake.clients({ instantRetries: true }).dynamodb, tableName: "ledger" });
  /** A second writer on the same table (its requests go through the hook too, after the one it races). */
  const other = new DynamoLedger({ client: fake.clients({ instantRetries: true }).dynamodb, tableName: "ledger" });
  return {
    fake,
    ledger,
    other,
    sent,
    ops: () => sent.map((s) => s.op),
    /** Runs `hook` on the first request of `op` from now on (requests of other operations pass). */
    on(op: string, hook: (input: Record<string, unknown>) => Promise<RequestFault> | RequestFault) {
      const wait = async (o: string, input: Record<string, unknown>): Promise<RequestFault> => {
        if (o !== op) {
          hooks.unshift(wait);
          return undefined;
        }
        return hook(input);
      };
      hooks.push(wait);
    },
    advance(ms: number) {
      now += ms;
    },
    writeUnits: () => fake.usage.dynamodbWriteUnits,
  };
}

function up(key: string, lastModified = "2026-04-01T09:59:00Z") {
  return toUpload({ bucket: "data-bucket", key, versionId: null, etag: "e1", lastModified, size: 10 });
}

describe("DynamoLedger items: the sparse index holds pending and running uploads only", () => {
  it("an upload's index keys follow its status: PENDING#shard, RUNNING#shard, none once settled or failed", async () => {
    const { fake, ledger } = wire();
    const u = up("input/a.csv");
    const { pk, sk } = uploadKey(u.uploadId);
    await ledger.recordUpload(u, AT);
    expect(fake.item(pk, sk)?.gsi1pk).toMatch(/^PENDING#([0-9]|1[0-5])$/);
    expect(String(fake.item(pk, sk)?.gsi1sk)).toMatch(/^2026-04-01T10:00:00.000Z#[0-9a-f]{32}$/);
    await ledger.claimUpload(u.uploadId, "r1", AT);
    expect(fake.item(pk, sk)?.gsi1pk).toMatch(/^RUNNING#([0-9]|1[0-5])$/);
    expect(String(fake.item(pk, sk)?.gsi1sk)).toMatch(/^r1#[0-9a-f]{32}$/);
    await ledger.settleUpload(u.uploadId, "r1", PROCESSED, LATER);
    expect(fake.item(pk, sk)).toMatchObject({ status: "processed", type: "upload" });
    expect(fake.item(pk, sk)).not.toHaveProperty("gsi1pk");
    expect(fake.item(pk, sk)).not.toHaveProperty("gsi1sk");

    const bad = up("input/bad.csv");
    await ledger.recordUpload(bad, AT, "not a CSV");
    const b = uploadKey(bad.uploadId);
    expect(fake.item(b.pk, b.sk)).toMatchObject({ status: "failed" });
    expect(fake.item(b.pk, b.sk)).not.toHaveProperty("gsi1pk");
  });

  it("a running upload's item is keyed RUNNING#<shard> by run then id hash (sha256 of the id, first 32 hex)", () => {
    // sha256("data-bucket/input/a.csv@t1") starts 5c428444 → shard 4 (see above)
    const item = uploadItem({
      ...newUploadRecord(up("input/a.csv"), AT),
      uploadId: "data-bucket/input/a.csv@t1",
      status: "running",
      runKey: "r1",
    });
    expect(item.gsi1pk).toBe("RUNNING#4");
    expect(item.gsi1sk).toMatch(/^r1#5c428444[0-9a-f]{24}$/);
  });

  it("every item says what it is; listUploads returns the uploads only", async () => {
    const { fake, ledger } = wire();
    await ledger.recordUpload(up("input/a.csv"), AT);
    await ledger.createRun(runRecord("r1", AT));
    await ledger.linkGlueRun("jr_1", "r1");
    await ledger.saveReconcilerPosition({ afterKey: null, savedAt: AT, passStartedAt: AT, lastPassEndedAt: null });
    await ledger.takeSlot("r1", AT);
    expect([...fake.items()].map((i) => `${i.pk}:${i.type}`).sort()).toEqual([
      "GLUERUN:glue-run",
      "RECONCILER:reconciler",
      "RUN:run",
      "SLOT:undefined",
      "UPLOAD#data-bucket/input/a.csv:upload",
    ]);
    expect((await ledger.listUploads()).map((u) => u.key)).toEqual(["input/a.csv"]);
  });

  it("a run with an absent optional field (closedBy: undefined) is written without it (the raw client path)", async () => {
    const { ledger } = wire();
    // The types forbid an explicit undefined (exactOptionalPropertyTypes); a caller outside them (JS, parsed JSON) may not.
    await ledger.createRun({ ...runRecord("r1", AT), closedBy: ABSENT });
    expect(await ledger.getRun("r1")).toEqual(runRecord("r1", AT));
  });
});

describe("DynamoLedger reads: consistent on the table, never on the index", () => {
  it("every GetItem and table Query asks for a consistent read; index Queries do not", async () => {
    const { ledger, sent } = wire();
    const u = up("input/a.csv");
    await ledger.recordUpload(u, AT);
    await ledger.getUpload(u.uploadId);
    await ledger.uploadsOfKey("data-bucket", "input/a.csv");
    await ledger.listPending(5);
    await ledger.listRunning(5, null);
    await ledger.getRun("r1");
    await ledger.listRuns(5);
    await ledger.runKeyOfGlueRun("jr_1");
    await ledger.getSlot();
    await ledger.getHealth();
    await ledger.getReconcilerPosition();
    await ledger.takeSlot("r1", AT);
    await ledger.releaseSlot("r1");
    await ledger.settleUpload(u.uploadId, "r1", PROCESSED, AT);
    await ledger.settleUpload(u.uploadId, "r1", { status: "pending", error: "x", attempts: 0, retryGroupSize: 1 }, AT);
    const reads = sent.filter((s) => s.op === "GetItem" || s.op === "Query");
    expect(reads.filter((s) => s.input.IndexName === undefined).map((s) => s.input.ConsistentRead)).toEqual(
      Array(10).fill(true),
    );
    expect(reads.filter((s) => s.input.IndexName === "pending")).toHaveLength(34);
    for (const s of reads) if (s.input.IndexName) expect(s.input).not.toHaveProperty("ConsistentRead");
  });
});

describe("DynamoLedger's conditional writes against races and lost answers", () => {
  it("a settlement racing another settler of the same upload does not overwrite it and reports false", async () => {
    const w = wire();
    const u = up("input/a.csv");
    await w.ledger.recordUpload(u, AT);
    await w.ledger.claimUpload(u.uploadId, "r1", AT);
    const failed = { status: "failed", error: "orphaned", attempts: 1 } as const;
    w.on("UpdateItem", async () => {
      expect(await w.other.settleUpload(u.uploadId, "r1", failed, AT)).toBe(true);
      return undefined;
    });
    expect(await w.ledger.settleUpload(u.uploadId, "r1", PROCESSED, LATER)).toBe(false);
    expect(await w.ledger.getUpload(u.uploadId)).toMatchObject({ status: "failed", error: "orphaned" });
  });

  it("a settlement whose answer was lost reports success from the retry's failed condition (no extra read)", async () => {
    const w = wire();
    const u = up("input/a.csv");
    await w.ledger.recordUpload(u, AT);
    await w.ledger.claimUpload(u.uploadId, "r1", AT);
    w.sent.length = 0;
    w.on("UpdateItem", () => "lose-answer");
    expect(await w.ledger.settleUpload(u.uploadId, "r1", PROCESSED, LATER)).toBe(true);
    // processed and failed: one conditional update, no read before it (the recorder settles a whole run in one go)
    expect(w.ops()).toEqual(["UpdateItem", "UpdateItem"]);
    expect(await w.ledger.getUpload(u.uploadId)).toMatchObject({ status: "processed", output: "out/a" });

    // pending goes back into the index under a key made from receivedAt: read, then a conditional put
    const v = up("input/b.csv");
    await w.ledger.recordUpload(v, AT);
    await w.ledger.claimUpload(v.uploadId, "r1", AT);
    w.sent.length = 0;
    w.on("PutItem", () => "lose-answer");
    const back = { status: "pending", error: "run failed", attempts: 0, retryGroupSize: 1 } as const;
    expect(await w.ledger.settleUpload(v.uploadId, "r1", back, LATER)).toBe(true);
    expect(w.ops()).toEqual(["GetItem", "PutItem", "PutItem"]);
    expect(await w.ledger.getUpload(v.uploadId)).toMatchObject({ status: "pending", runKey: null, lastRunKey: "r1" });
  });

  it("failing a pending upload loses to a claim that came first; a lost answer of the fail reads back as done", async () => {
    const w = wire();
    const [a, b] = [up("input/a.csv"), up("input/b.csv")];
    await w.ledger.recordUpload(a, AT);
    await w.ledger.recordUpload(b, AT);
    w.on("PutItem", async () => {
      expect(await w.other.claimUpload(a.uploadId, "r1", AT)).toBe(true);
      return undefined;
    });
    expect(await w.ledger.failPendingUpload(a.uploadId, "r2", "superseded: x", LATER)).toBe(false);
    expect(await w.ledger.getUpload(a.uploadId)).toMatchObject({ status: "running", runKey: "r1" });

    w.on("PutItem", () => "lose-answer");
    expect(await w.ledger.failPendingUpload(b.uploadId, "r2", "superseded: x", LATER)).toBe(true);
    expect(await w.ledger.getUpload(b.uploadId)).toMatchObject({ status: "failed", error: "superseded: x" });
  });

  it("a requeue loses to a requeue-and-claim that came first; a lost answer of the requeue reads back as done", async () => {
    const w = wire();
    const [a, b] = [up("input/a.csv"), up("input/b.csv")];
    await w.ledger.recordUpload(a, AT, "bad");
    await w.ledger.recordUpload(b, AT, "bad");
    w.on("PutItem", async () => {
      expect(await w.other.requeueUpload(a.uploadId, AT)).toBe(true);
      expect(await w.other.claimUpload(a.uploadId, "r1", AT)).toBe(true);
      return undefined;
    });
    expect(await w.ledger.requeueUpload(a.uploadId, LATER)).toBe(false);
    expect(await w.ledger.getUpload(a.uploadId)).toMatchObject({ status: "running", runKey: "r1" });

    w.on("PutItem", () => "lose-answer");
    expect(await w.ledger.requeueUpload(b.uploadId, LATER)).toBe(true);
    expect(await w.ledger.getUpload(b.uploadId)).toMatchObject({ status: "pending", attempts: 0, updatedAt: LATER });
  });

  it("a repeated fail, requeue or release is answered from its read without a write; a repeated settle from its failed condition", async () => {
    const w = wire();
    const [a, b] = [up("input/a.csv"), up("input/b.csv")];
    await w.ledger.recordUpload(a, AT);
    await w.ledger.recordUpload(b, AT);
    await w.ledger.claimUpload(a.uploadId, "r1", AT);
    await w.ledger.settleUpload(a.uploadId, "r1", PROCESSED, LATER);
    await w.ledger.failPendingUpload(b.uploadId, "r1", "superseded: x", LATER);
    await w.ledger.takeSlot("r1", AT);
    await w.ledger.releaseSlot("r1");
    // A settle does not read first: a repeat fails its condition, which costs that write's unit (as on DynamoDB), and
    // is judged on the item the failure returned — no read.
    let units = w.writeUnits();
    w.sent.length = 0;
    expect(await w.ledger.settleUpload(a.uploadId, "r1", PROCESSED, LATER)).toBe(true);
    expect(await w.ledger.settleUpload(a.uploadId, "r2", PROCESSED, LATER)).toBe(false);
    expect(w.ops()).toEqual(["UpdateItem", "UpdateItem"]);
    expect(w.writeUnits()).toBe(units + 2);
    expect(await w.ledger.getUpload(a.uploadId)).toMatchObject({ status: "processed", runKey: "r1", updatedAt: LATER });
    units = w.writeUnits();
    expect(await w.ledger.failPendingUpload(b.uploadId, "r1", "superseded: x", LATER)).toBe(true);
    expect(await w.ledger.requeueUpload(a.uploadId, LATER)).toBe(false);
    expect(await w.ledger.releaseSlot("r1")).toEqual({ released: true, wakeup: false });
    expect(await w.ledger.releaseSlot("r2")).toEqual({ released: false, wakeup: false });
    expect(w.writeUnits()).toBe(units);
  });

  it("a settlement from another run than the one running the upload is refused by its condition and changes nothing", async () => {
    const w = wire();
    const u = up("input/a.csv");
    await w.ledger.recordUpload(u, AT);
    await w.ledger.claimUpload(u.uploadId, "r1", AT);
    const before = await w.ledger.getUpload(u.uploadId);
    const units = w.writeUnits();
    w.sent.length = 0;
    expect(await w.ledger.settleUpload(u.uploadId, "r2", PROCESSED, LATER)).toBe(false);
    expect(await w.ledger.settleUpload(u.uploadId, "r2", { status: "failed", error: "x", attempts: 1 }, LATER)).toBe(
      false,
    );
    expect(w.ops()).toEqual(["UpdateItem", "UpdateItem"]);
    expect(w.writeUnits()).toBe(units + 2);
    expect(await w.ledger.getUpload(u.uploadId)).toEqual(before);
    // back to pending from another run: refused from the read, no write (the put is built from that read)
    w.sent.length = 0;
    const back = { status: "pending", error: "x", attempts: 0, retryGroupSize: 1 } as const;
    expect(await w.ledger.settleUpload(u.uploadId, "r2", back, LATER)).toBe(false);
    expect(await w.ledger.settleUpload(u.uploadId, "r2", back, LATER, before ?? undefined)).toBe(false);
    expect(w.ops()).toEqual(["GetItem", "GetItem"]);
    expect(w.writeUnits()).toBe(units + 2);
    expect(await w.ledger.getUpload(u.uploadId)).toEqual(before);
  });

  it("a settlement back to pending with the record its caller read puts without reading again; a stale one is refused", async () => {
    const w = wire();
    const [a, b] = [up("input/a.csv"), up("input/b.csv")];
    for (const u of [a, b]) {
      await w.ledger.recordUpload(u, AT);
      await w.ledger.claimUpload(u.uploadId, "r1", AT);
    }
    const back = { status: "pending", error: "run failed", attempts: 0, retryGroupSize: 1 } as const;
    const readA = (await w.ledger.getUpload(a.uploadId)) as UploadRecord;
    w.sent.length = 0;
    expect(await w.ledger.settleUpload(a.uploadId, "r1", back, LATER, readA)).toBe(true);
    expect(w.ops()).toEqual(["PutItem"]);
    expect(await w.ledger.getUpload(a.uploadId)).toEqual(settledRecord(readA, back, LATER));
    expect(await w.ledger.listPending(5)).toMatchObject([{ uploadId: a.uploadId }]);

    // read, then settled by someone else before our write: the condition refuses the stale snapshot
    const readB = (await w.ledger.getUpload(b.uploadId)) as UploadRecord;
    expect(await w.other.settleUpload(b.uploadId, "r1", PROCESSED, AT)).toBe(true);
    expect(await w.ledger.settleUpload(b.uploadId, "r1", back, LATER, readB)).toBe(false);
    expect(await w.ledger.getUpload(b.uploadId)).toMatchObject({ status: "processed", output: "out/a", updatedAt: AT });
  });

  it("a settlement missing a field (stats written without it) is stored with null there, not refused", async () => {
    const w = wire();
    const u = up("input/a.csv");
    await w.ledger.recordUpload(u, AT);
    await w.ledger.claimUpload(u.uploadId, "r1", AT);
    const { rejectedOutput: _dropped, ...partial } = PROCESSED;
    expect(await w.ledger.settleUpload(u.uploadId, "r1", partial as typeof PROCESSED, LATER)).toBe(true);
    expect(await w.ledger.getUpload(u.uploadId)).toMatchObject({ status: "processed", rejectedOutput: null });
  });

  it("a settlement leaves every attribute but the settled ones as they were, and the item out of the index", async () => {
    const w = wire();
    const u = up("input/a.csv");
    await w.ledger.recordUpload(u, AT);
    await w.ledger.claimUpload(u.uploadId, "r1", AT);
    const running = (await w.ledger.getUpload(u.uploadId)) as UploadRecord;
    const failed = { status: "failed", error: "row 3: bad", attempts: 2 } as const;
    const v = up("input/b.csv");
    await w.ledger.recordUpload(v, AT);
    await w.ledger.claimUpload(v.uploadId, "r1", AT);
    const runningV = (await w.ledger.getUpload(v.uploadId)) as UploadRecord;
    expect(await w.ledger.settleUpload(u.uploadId, "r1", PROCESSED, LATER)).toBe(true);
    expect(await w.ledger.settleUpload(v.uploadId, "r1", failed, LATER)).toBe(true);
    // what MemoryLedger (settledRecord) makes of the same records, field for field
    expect(await w.ledger.getUpload(u.uploadId)).toEqual(settledRecord(running, PROCESSED, LATER));
    expect(await w.ledger.getUpload(v.uploadId)).toEqual(settledRecord(runningV, failed, LATER));
    for (const x of [u, v]) {
      const { pk, sk } = uploadKey(x.uploadId);
      expect(w.fake.item(pk, sk)).not.toHaveProperty("gsi1pk");
      expect(w.fake.item(pk, sk)).not.toHaveProperty("gsi1sk");
    }
    expect(await w.ledger.listRunning(10, null)).toEqual([]);
  });

  it("an unknown upload is neither claimed, settled, failed nor requeued", async () => {
    const { ledger } = wire();
    const id = up("input/none.csv").uploadId;
    expect(await ledger.claimUpload(id, "r1", AT)).toBe(false);
    expect(await ledger.settleUpload(id, "r1", PROCESSED, AT)).toBe(false);
    expect(await ledger.failPendingUpload(id, "r1", "x", AT)).toBe(false);
    expect(await ledger.requeueUpload(id, AT)).toBe(false);
    expect(await ledger.getUpload(id)).toBeNull();
  });

  it("a write DynamoDB refuses (not a failed condition) surfaces, and is never taken for 'already done'", async () => {
    const w = wire();
    const u = up("input/a.csv");
    w.on("PutItem", () => "refuse");
    await expect(w.ledger.recordUpload(u, AT)).rejects.toThrow("fake: request refused");
    await w.ledger.recordUpload(u, AT);
    await w.ledger.takeSlot("r1", AT);
    w.on("UpdateItem", () => "refuse");
    await expect(w.ledger.claimUpload(u.uploadId, "r1", AT)).rejects.toThrow("fake: request refused");
    await w.ledger.recordRunHealth("r1", "system-failure", AT);
    w.on("UpdateItem", () => "refuse");
    await expect(w.ledger.recordRunHealth("r2", "system-failure", AT)).rejects.toThrow("fake: request refused");
    expect(await w.ledger.getHealth()).toMatchObject({ consecutiveSystemFailures: 1, lastRunKey: "r1" });
  });

  it("a repeated health record is answered by its failed condition (ALL_OLD), without another read", async () => {
    const w = wire();
    await w.ledger.recordRunHealth("r1", "system-failure", AT);
    w.sent.length = 0;
    expect(await w.ledger.recordRunHealth("r1", "system-failure", LATER)).toEqual({
      consecutiveSystemFailures: 1,
      lastRunKey: "r1",
      lastFailureAt: AT,
    });
    expect(w.ops()).toEqual(["UpdateItem"]);
  });

  it("createRun of a run key taken by other contents throws; updateRun moves from any named state, writes nothing for an empty patch", async () => {
    const { ledger } = wire();
    await ledger.createRun(runRecord("r1", AT));
    await expect(ledger.createRun(runRecord("r1", AT, { fileCount: 2 }))).rejects.toThrow(
      new Error("run r1 exists with other contents"),
    );
    await ledger.updateRun("r1", ["starting"], { state: "running" });
    expect(await ledger.updateRun("r1", ["starting", "running"], { state: "succeeded", glueRunId: ABSENT })).toBe(true);
    expect(await ledger.updateRun("r1", ["succeeded"], {})).toBe(false);
    expect(await ledger.updateRun("r1", ["succeeded"], { error: ABSENT })).toBe(false);
    expect(await ledger.getRun("r1")).toEqual(runRecord("r1", AT, { state: "succeeded" }));
  });
});

describe("DynamoLedger's run slot on the wire", () => {
  it("a revocation whose read saw the holder unlaunched is refused when the holder's fence lands before its write", async () => {
    const w = wire();
    await w.ledger.takeSlot("r1", AT);
    w.on("UpdateItem", async () => {
      // between the revoker's read and its conditional write, the holder passes its fence
      expect(await w.other.markLaunched("r1", LATER)).toBe(true);
      return undefined;
    });
    expect(await w.ledger.releaseSlot("r1", { unlessLaunched: true })).toEqual({ released: false, wakeup: false });
    expect(await w.ledger.getSlot()).toMatchObject({ holder: "r1", launched: true, launchedAt: LATER });
  });

  it("a wake-up request that fails for another reason than a free slot throws (it is not read as 'free')", async () => {
    const w = wire();
    await w.ledger.takeSlot("r1", AT);
    w.on("UpdateItem", () => "refuse");
    await expect(w.ledger.requestWakeup()).rejects.toThrow("fake: request refused");
    expect(await w.ledger.requestWakeup()).toMatchObject({ holder: "r1", wakeup: true });
  });

  it("a slot taken by code from before the launch fence counts as launched: only the sweeper repairs it", async () => {
    const w = wire();
    const raw = DynamoDBDocumentClient.from(w.fake.clients().dynamodb);
    const oldTake = (holder: string, leftOver: Record<string, unknown> = {}) =>
      raw.send(
        new PutCommand({
          TableName: "ledger",
          Item: { pk: "SLOT", sk: "SLOT", holder, takenAt: AT, wakeup: false, ...leftOver },
        }),
      );
    await oldTake("r0");
    expect(await w.ledger.getSlot()).toEqual({
      holder: "r0",
      takenAt: AT,
      wakeup: false,
      launched: true,
      launchedAt: null,
    });
    expect(await w.ledger.releaseSlot("r0", { unlessLaunched: true })).toEqual({ released: false, wakeup: false });
    expect(await w.ledger.requestWakeup()).toMatchObject({ holder: "r0", launched: true });
    expect(await w.ledger.releaseSlot("r0")).toEqual({ released: true, wakeup: true });
    // An old holder's take over a slot a new holder left unlaunched (old code neither sets nor clears the mark)
    await w.ledger.takeSlot("r1", AT);
    await oldTake("r2", { unlaunched: "r1" });
    expect((await w.ledger.getSlot()).launched).toBe(true);
    expect(await w.ledger.releaseSlot("r2", { unlessLaunched: true })).toEqual({ released: false, wakeup: false });
    expect(await w.ledger.releaseSlot("r2")).toMatchObject({ released: true });
    // An old holder's take after a new holder's fence and an old version's release (which leaves the fence time):
    // launched, but the earlier holder's fence time is not its own (the sweeper then counts from its take).
    await oldTake("r4", { launchedAt: "2026-04-01T09:00:00.000Z", launchedBy: "r3x" });
    expect(await w.ledger.getSlot()).toMatchObject({ holder: "r4", launched: true, launchedAt: null });
    expect(await w.ledger.releaseSlot("r4")).toMatchObject({ released: true });
    // a slot taken now is revocable until its holder's fence
    await w.ledger.takeSlot("r3", AT);
    expect((await w.ledger.getSlot()).launched).toBe(false);
    expect(await w.ledger.releaseSlot("r3", { unlessLaunched: true })).toEqual({ released: true, wakeup: false });
  });

  it("a fresh table: no holder, no wake-up; releasing a slot nobody took releases nothing", async () => {
    const { ledger } = wire();
    expect(await ledger.getSlot()).toEqual(FREE_SLOT);
    expect(await ledger.releaseSlot("r1")).toEqual({ released: false, wakeup: false });
    expect(await ledger.requestWakeup()).toBeNull();
    await ledger.takeSlot("r1", AT);
    expect(await ledger.requestWakeup()).toMatchObject({ holder: "r1", wakeup: true });
    expect(await ledger.getSlot()).toEqual({
      holder: "r1",
      takenAt: AT,
      wakeup: true,
      launched: false,
      launchedAt: null,
    });
  });

  it("a wake-up requested between the release's read and its write is not lost: the release reads again", async () => {
    const w = wire();
    await w.ledger.takeSlot("r1", AT);
    w.on("UpdateItem", async () => {
      expect(await w.other.requestWakeup()).toMatchObject({ holder: "r1", wakeup: true });
      return undefined;
    });
    expect(await w.ledger.releaseSlot("r1")).toEqual({ released: true, wakeup: true });
    expect(await w.ledger.getSlot()).toEqual(FREE_SLOT);
  });

  it("a release whose answer was lost reports the wake-up it released (from the retry's failed condition)", async () => {
    const w = wire();
    await w.ledger.takeSlot("r1", AT);
    await w.ledger.requestWakeup();
    w.on("UpdateItem", () => "lose-answer");
    expect(await w.ledger.releaseSlot("r1")).toEqual({ released: true, wakeup: true });

    await w.ledger.takeSlot("r2", AT);
    w.on("UpdateItem", () => "lose-answer");
    expect(await w.ledger.releaseSlot("r2")).toEqual({ released: true, wakeup: false });
  });

  it("two settlers releasing one run's slot at once (recorder, sweeper) both report the release and its wake-up", async () => {
    const w = wire();
    await w.ledger.takeSlot("r1", AT);
    await w.ledger.requestWakeup();
    w.on("UpdateItem", async () => {
      expect(await w.other.releaseSlot("r1")).toEqual({ released: true, wakeup: true });
      expect(await w.other.takeSlot("r2", AT)).toBe(true);
      return undefined;
    });
    expect(await w.ledger.releaseSlot("r1")).toEqual({ released: true, wakeup: true });
    expect(await w.ledger.getSlot()).toEqual({
      holder: "r2",
      takenAt: AT,
      wakeup: false,
      launched: false,
      launchedAt: null,
    });
  });

  it("a release retried after another run took and released the slot reports nothing (only the last release is kept, as in MemoryLedger)", async () => {
    const w = wire();
    await w.ledger.takeSlot("r1", AT);
    await w.ledger.requestWakeup();
    w.on("UpdateItem", () => "lose-answer");
    w.on("UpdateItem", async () => {
      // between the lost answer and the SDK's retry: r2 starts and ends
      expect(await w.other.takeSlot("r2", AT)).toBe(true);
      expect(await w.other.releaseSlot("r2")).toEqual({ released: true, wakeup: false });
      return undefined;
    });
    expect(await w.ledger.releaseSlot("r1")).toEqual({ released: false, wakeup: false });
    expect(await w.ledger.getSlot()).toEqual(FREE_SLOT);
  });

  it("gives up after 5 rounds when the wake-up flag changes under every release", async () => {
    const w = wire();
    await w.ledger.takeSlot("r1", AT);
    const raw = DynamoDBDocumentClient.from(w.fake.clients().dynamodb);
    let flips = 0;
    const flip = async (input: Record<string, unknown>): Promise<RequestFault> => {
      if (String(input.UpdateExpression).startsWith("SET wakeup = :no, releasedBy")) {
        flips++;
        await raw.send(
          new UpdateCommand({
            TableName: "ledger",
            Key: { pk: "SLOT", sk: "SLOT" },
            UpdateExpression: "SET wakeup = :w",
            ExpressionAttributeValues: { ":w": flips % 2 === 1 },
          }),
        );
      }
      return undefined;
    };
    for (let i = 0; i < 12; i++) w.on("UpdateItem", flip); // each round: the release's write and the flip's
    await expect(w.ledger.releaseSlot("r1")).rejects.toThrow(
      new Error("could not release the run slot held by r1: its wake-up flag kept changing"),
    );
    expect(flips).toBe(5);
    expect(await w.ledger.getSlot()).toMatchObject({ holder: "r1" });
  });
});

describe("DynamoLedger's index listings: merged in order, page by page, around the slot's run", () => {
  it("lists a backlog oldest first across partitions and reads pages of about 2 × limit / partitions (10..1000)", async () => {
    const w = wire();
    const uploads = Array.from({ length: 60 }, (_, i) =>
      up(`input/f${i}.csv`, `2026-04-01T09:${String(i).padStart(2, "0")}:00Z`),
    );
    for (const [i, u] of uploads.entries())
      await w.ledger.recordUpload(u, `2026-04-01T09:${String(i).padStart(2, "0")}:30.000Z`);
    w.sent.length = 0;
    expect((await w.ledger.listPending(60)).map((u) => u.key)).toEqual(uploads.map((u) => u.key));
    expect(new Set(w.sent.map((s) => s.input.Limit))).toEqual(new Set([10]));
    w.sent.length = 0;
    await w.ledger.listPending(200); // ceil(2 × 200 / 17 partitions) = 24
    expect(new Set(w.sent.map((s) => s.input.Limit))).toEqual(new Set([24]));
    w.sent.length = 0;
    await w.ledger.listPending(20_000); // capped at 1,000
    expect(new Set(w.sent.map((s) => s.input.Limit))).toEqual(new Set([1000]));
    for (const s of w.sent) expect(s.input.ScanIndexForward).toBe(true);
  });

  it("reads an unsharded (pre-sharding) partition page by page, only as far as the merge needs", async () => {
    const w = wire();
    const raw = DynamoDBDocumentClient.from(w.fake.clients().dynamodb);
    const legacy = Array.from({ length: 25 }, (_, i) => up(`input/old${String(i).padStart(2, "0")}.csv`));
    for (const [i, u] of legacy.entries()) {
      const record = newUploadRecord(u, `2026-04-01T08:00:${String(i).padStart(2, "0")}.000Z`);
      await raw.send(new PutCommand({ TableName: "ledger", Item: { ...uploadItem(record), gsi1pk: "PENDING" } }));
    }
    await w.ledger.recordUpload(up("input/new.csv"), AT);
    w.sent.length = 0;
    expect((await w.ledger.listPending(5)).map((u) => u.key)).toEqual(legacy.slice(0, 5).map((u) => u.key));
    expect(w.sent.filter((s) => JSON.stringify(s.input).includes('"PENDING"'))).toHaveLength(1); // 1 page of 10
    w.sent.length = 0;
    expect((await w.ledger.listPending(26)).map((u) => u.key)).toEqual([...legacy.map((u) => u.key), "input/new.csv"]);
    expect(w.sent.filter((s) => JSON.stringify(s.input).includes('"PENDING"'))).toHaveLength(3); // 10 + 10 + 5
  });

  it("lists running uploads outside the slot's run even when that run's uploads sort first", async () => {
    const w = wire();
    const older = [up("input/a.csv"), up("input/b.csv"), up("input/c.csv")];
    const newer = up("input/d.csv");
    for (const u of [...older, newer]) await w.ledger.recordUpload(u, AT);
    for (const u of older) await w.ledger.claimUpload(u.uploadId, "20260401T100000Z-aaaa", AT);
    await w.ledger.claimUpload(newer.uploadId, "20260401T100500Z-bbbb", AT);
    expect((await w.ledger.listRunning(1, "20260401T100000Z-aaaa")).map((u) => u.key)).toEqual(["input/d.csv"]);
    expect((await w.ledger.listRunning(1, "20260401T100500Z-bbbb")).map((u) => u.runKey)).toEqual([
      "20260401T100000Z-aaaa",
    ]);
  });
});
