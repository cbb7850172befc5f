/**
 * The ledger on DynamoDB (one table, keys from LEDGER_TABLE). Every state move is a conditional write on the state
 * it moves from, like MemoryLedger; the contract suite runs against both (tests/integration, on the emulator).
 *
 *   UPLOAD#<bucket>/<key> | <versionTag>   one upload; pending ones carry gsi1pk=PENDING, gsi1sk=<receivedAt>#<id>,
 *                                          running ones gsi1pk=RUNNING, gsi1sk=<runKey>#<id> (same sparse index;
 *                                          settled ones are not in it)
 *   RUN                   | <runKey>        one run (runKeys sort by time: newest-first listing is one Query)
 *   SLOT                  | SLOT            the run slot: holder, takenAt, wakeup
 *   GLUERUN               | <JobRunId>      → runKey
 */
import {
  ConditionalCheckFailedException,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import {
  failedPendingRecord,
  LEDGER_TABLE,
  type LedgerStore,
  newUploadRecord,
  pendingOrder,
  type ReconcilerPosition,
  type ReconcilerPositionStore,
  type RunRecord,
  type RunState,
  runningOrder,
  type Settlement,
  type SlotRecord,
  settledRecord,
  type Upload,
  type UploadRecord,
} from "@ingest/core";

const PENDING = "PENDING";
const RUNNING = "RUNNING";
const SLOT_KEY = { pk: "SLOT", sk: "SLOT" };
/** The reconciler's listing position (one item; only the reconciler reads or writes it). */
const RECONCILER_KEY = { pk: "RECONCILER", sk: "POSITION" };

type Item = Record<string, unknown>;

/** The ledger table as CreateTable wants it (the twin and the integration tests create it; infra declares it). */
export function ledgerTableInput(tableName: string): CreateTableCommandInput {
  const { hashKey, rangeKey, pendingIndex } = LEDGER_TABLE;
  return {
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [hashKey, rangeKey, pendingIndex.hashKey, pendingIndex.rangeKey].map((name) => ({
      AttributeName: name,
      AttributeType: "S",
    })),
    KeySchema: [
      { AttributeName: hashKey, KeyType: "HASH" },
      { AttributeName: rangeKey, KeyType: "RANGE" },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: pendingIndex.name,
        KeySchema: [
          { AttributeName: pendingIndex.hashKey, KeyType: "HASH" },
          { AttributeName: pendingIndex.rangeKey, KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "ALL" },
      },
    ],
  };
}

export function uploadKey(uploadId: string): { pk: string; sk: string } {
  const at = uploadId.lastIndexOf("@");
  if (at < 0) throw new RangeError(`not an upload id: ${uploadId}`);
  return { pk: `UPLOAD#${uploadId.slice(0, at)}`, sk: uploadId.slice(at + 1) };
}

function uploadItem(r: UploadRecord): Item {
  const { pk, sk } = uploadKey(r.uploadId);
  return {
    pk,
    sk,
    type: "upload",
    ...r,
    ...(r.status === "pending" ? { gsi1pk: PENDING, gsi1sk: pendingOrder(r) } : {}),
    ...(r.status === "running" ? { gsi1pk: RUNNING, gsi1sk: runningOrder(r) } : {}),
  };
}

function toUploadRecord(item: Item): UploadRecord {
  const { pk: _pk, sk: _sk, type: _type, gsi1pk: _g1, gsi1sk: _g2, ...rest } = item;
  return rest as unknown as UploadRecord;
}

function toRunRecord(item: Item): RunRecord {
  const { pk: _pk, sk: _sk, type: _type, ...rest } = item;
  return rest as unknown as RunRecord;
}

function isConditionFailure(e: unknown): boolean {
  return (
    e instanceof ConditionalCheckFailedException || (e as { name?: string })?.name === "ConditionalCheckFailedException"
  );
}

export class DynamoLedger implements LedgerStore, ReconcilerPositionStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(opts: { client: DynamoDBClient | DynamoDBDocumentClient; tableName: string }) {
    this.doc =
      opts.client instanceof DynamoDBDocumentClient
        ? opts.client
        : DynamoDBDocumentClient.from(opts.client, { marshallOptions: { removeUndefinedValues: true } });
    this.table = opts.tableName;
  }

  private async conditional(run: () => Promise<unknown>): Promise<boolean> {
    try {
      await run();
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }

  async recordUpload(upload: Upload, now: string, failure?: string) {
    const record = newUploadRecord(upload, now, failure);
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: uploadItem(record),
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
      return { created: true, record };
    } catch (e) {
      if (!isConditionFailure(e)) throw e;
      const existing = await this.getUpload(upload.uploadId);
      if (!existing) throw new Error(`upload ${upload.uploadId} exists but could not be read`);
      return { created: false, record: existing };
    }
  }

  async getUpload(uploadId: string) {
    const r = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: uploadKey(uploadId), ConsistentRead: true }),
    );
    return r.Item ? toUploadRecord(r.Item) : null;
  }

  async listPending(limit: number) {
    const out = await this.queryIndex("gsi1pk = :p", { ":p": PENDING }, limit);
    // The index is eventually consistent: what it lists may have moved on; claims check the real item.
    return out.filter((u) => u.status === "pending");
  }

  claimUpload(uploadId: string, runKey: string, now: string) {
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: uploadKey(uploadId),
          UpdateExpression:
            "SET #s = :running, runKey = :rk, updatedAt = :now, runs = runs + :one, gsi1pk = :idx, gsi1sk = :isk",
          ConditionExpression: "#s = :pending",
          ExpressionAttributeNames: { "#s": "status" },
          ExpressionAttributeValues: {
            ":running": "running",
            ":pending": "pending",
            ":rk": runKey,
            ":now": now,
            ":one": 1,
            ":idx": RUNNING,
            ":isk": runningOrder({ runKey, uploadId }),
          },
        }),
      ),
    );
  }

  async settleUpload(uploadId: string, runKey: string, settlement: Settlement, now: string) {
    const current = await this.getUpload(uploadId);
    if (current?.status !== "running" || current.runKey !== runKey) return false;
    return this.conditional(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: uploadItem(settledRecord(current, settlement, now)),
          ConditionExpression: "#s = :running AND runKey = :rk",
          ExpressionAttributeNames: { "#s": "status" },
          ExpressionAttributeValues: { ":running": "running", ":rk": runKey },
        }),
      ),
    );
  }

  async failPendingUpload(uploadId: string, runKey: string | null, error: string, now: string) {
    const current = await this.getUpload(uploadId);
    if (current?.status !== "pending") return false;
    // One conditional put: pending → failed (and out of the index) or nothing; there is no step in between.
    return this.conditional(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: uploadItem(failedPendingRecord(current, runKey, error, now)),
          ConditionExpression: "#s = :pending",
          ExpressionAttributeNames: { "#s": "status" },
          ExpressionAttributeValues: { ":pending": "pending" },
        }),
      ),
    );
  }

  /** Up to `limit` uploads from the sparse index matching `cond`, in index order, page by page. */
  private async queryIndex(cond: string, values: Record<string, string>, limit: number): Promise<UploadRecord[]> {
    const out: UploadRecord[] = [];
    let start: Item | undefined;
    do {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: LEDGER_TABLE.pendingIndex.name,
          KeyConditionExpression: cond,
          ExpressionAttributeValues: values,
          ScanIndexForward: true,
          Limit: Math.min(1000, limit - out.length),
          ExclusiveStartKey: start,
        }),
      );
      for (const item of r.Items ?? []) out.push(toUploadRecord(item));
      start = r.LastEvaluatedKey;
    } while (start && out.length < limit);
    return out;
  }

  async listRunning(limit: number, exceptRunKey: string | null) {
    // Running uploads are in the sparse index under RUNNING, sorted by <runKey>#<id>: everything but one run is at
    // most two range queries around its prefix ("$" sorts right after "#"), so the sweeper reads only what is
    // outside the slot's run (normally nothing), never the table. Items claimed before running uploads were indexed
    // (claims used to drop them from the index) are not listed: the sweeper cannot see those without a scan.
    const ranges: { cond: string; values: Record<string, string> }[] =
      exceptRunKey === null
        ? [{ cond: "gsi1pk = :r", values: { ":r": RUNNING } }]
        : [
            { cond: "gsi1pk = :r AND gsi1sk < :lo", values: { ":r": RUNNING, ":lo": `${exceptRunKey}#` } },
            { cond: "gsi1pk = :r AND gsi1sk > :hi", values: { ":r": RUNNING, ":hi": `${exceptRunKey}$` } },
          ];
    const out: UploadRecord[] = [];
    for (const range of ranges) {
      if (out.length >= limit) break;
      out.push(...(await this.queryIndex(range.cond, range.values, limit - out.length)));
    }
    // The index is eventually consistent: what it lists may have been settled since.
    return out.filter((u) => u.status === "running" && u.runKey !== exceptRunKey);
  }

  async requeueUpload(uploadId: string, now: string) {
    const current = await this.getUpload(uploadId);
    if (current?.status !== "failed") return false;
    const next: UploadRecord = {
      ...current,
      status: "pending",
      attempts: 0,
      retryGroupSize: null,
      runKey: null,
      updatedAt: now,
    };
    return this.conditional(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: uploadItem(next),
          ConditionExpression: "#s = :failed",
          ExpressionAttributeNames: { "#s": "status" },
          ExpressionAttributeValues: { ":failed": "failed" },
        }),
      ),
    );
  }

  async listUploads() {
    const out: UploadRecord[] = [];
    let start: Item | undefined;
    do {
      const r = await this.doc.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: "#t = :upload",
          ExpressionAttributeNames: { "#t": "type" },
          ExpressionAttributeValues: { ":upload": "upload" },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of r.Items ?? []) out.push(toUploadRecord(item));
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async uploadsOfKey(bucket: string, key: string) {
    const r = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": `UPLOAD#${bucket}/${key}` },
        ConsistentRead: true,
      }),
    );
    return (r.Items ?? []).map(toUploadRecord);
  }

  async createRun(run: RunRecord) {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: "RUN", sk: run.runKey, type: "run", ...run },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
  }

  async getRun(runKey: string) {
    const r = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { pk: "RUN", sk: runKey }, ConsistentRead: true }),
    );
    return r.Item ? toRunRecord(r.Item) : null;
  }

  updateRun(runKey: string, from: readonly RunState[], patch: Partial<Omit<RunRecord, "runKey">>) {
    const entries = Object.entries(patch).filter(([, v]) => v !== undefined);
    const names: Record<string, string> = { "#state": "state" };
    const values: Record<string, unknown> = {};
    const sets = entries.map(([k, v], i) => {
      names[`#f${i}`] = k;
      values[`:v${i}`] = v;
      return `#f${i} = :v${i}`;
    });
    const fromNames = from.map((s, i) => {
      values[`:from${i}`] = s;
      return `:from${i}`;
    });
    if (sets.length === 0) return Promise.resolve(false);
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: "RUN", sk: runKey },
          UpdateExpression: `SET ${sets.join(", ")}`,
          ConditionExpression: `attribute_exists(pk) AND #state IN (${fromNames.join(", ")})`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      ),
    );
  }

  async linkGlueRun(glueRunId: string, runKey: string) {
    await this.doc.send(
      new PutCommand({ TableName: this.table, Item: { pk: "GLUERUN", sk: glueRunId, type: "glue-run", runKey } }),
    );
  }

  async runKeyOfGlueRun(glueRunId: string) {
    const r = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { pk: "GLUERUN", sk: glueRunId }, ConsistentRead: true }),
    );
    return (r.Item?.runKey as string | undefined) ?? null;
  }

  async listRuns(limit: number) {
    const r = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: "pk = :run",
        ExpressionAttributeValues: { ":run": "RUN" },
        ScanIndexForward: false,
        Limit: limit,
        ConsistentRead: true,
      }),
    );
    return (r.Items ?? []).map(toRunRecord);
  }

  takeSlot(runKey: string, now: string) {
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: SLOT_KEY,
          UpdateExpression: "SET holder = :rk, takenAt = :now, wakeup = :no",
          ConditionExpression: "attribute_not_exists(holder)",
          ExpressionAttributeValues: { ":rk": runKey, ":now": now, ":no": false },
        }),
      ),
    );
  }

  async releaseSlot(runKey: string) {
    try {
      const r = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: SLOT_KEY,
          UpdateExpression: "SET wakeup = :no REMOVE holder, takenAt",
          ConditionExpression: "holder = :rk",
          ExpressionAttributeValues: { ":rk": runKey, ":no": false },
          ReturnValues: "ALL_OLD",
        }),
      );
      return { released: true, wakeup: r.Attributes?.wakeup === true };
    } catch (e) {
      if (isConditionFailure(e)) return { released: false, wakeup: false };
      throw e;
    }
  }

  requestWakeup() {
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: SLOT_KEY,
          UpdateExpression: "SET wakeup = :yes",
          ConditionExpression: "attribute_exists(holder)",
          ExpressionAttributeValues: { ":yes": true },
        }),
      ),
    );
  }

  async getSlot(): Promise<SlotRecord> {
    const r = await this.doc.send(new GetCommand({ TableName: this.table, Key: SLOT_KEY, ConsistentRead: true }));
    return {
      holder: (r.Item?.holder as string | undefined) ?? null,
      takenAt: (r.Item?.takenAt as string | undefined) ?? null,
      wakeup: r.Item?.wakeup === true,
    };
  }

  async getReconcilerPosition(): Promise<ReconcilerPosition | null> {
    const r = await this.doc.send(new GetCommand({ TableName: this.table, Key: RECONCILER_KEY, ConsistentRead: true }));
    if (!r.Item) return null;
    return {
      afterKey: (r.Item.afterKey as string | undefined) ?? null,
      savedAt: r.Item.savedAt as string,
      passStartedAt: r.Item.passStartedAt as string,
      lastPassEndedAt: (r.Item.lastPassEndedAt as string | undefined) ?? null,
    };
  }

  async saveReconcilerPosition(position: ReconcilerPosition): Promise<void> {
    await this.doc.send(
      new PutCommand({ TableName: this.table, Item: { ...RECONCILER_KEY, type: "reconciler", ...position } }),
    );
  }
}
