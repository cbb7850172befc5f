/**
 * The ledger on DynamoDB (one table, keys from LEDGER_TABLE). Every state move is a conditional write on the state
 * it moves from, like MemoryLedger; the contract suite runs against both (tests/integration, on the emulator).
 *
 *   UPLOAD#<bucket>/<key> | <versionTag>   one upload; pending ones carry gsi1pk=PENDING#<shard>,
 *                                          gsi1sk=<receivedAt>#<hash of id>, running ones gsi1pk=RUNNING#<shard>,
 *                                          gsi1sk=<runKey>#<hash of id> (same sparse index; settled ones are not in
 *                                          it). The shard (0..indexShards-1, from the id's hash) spreads a burst over
 *                                          index partitions; the hash keeps the sort key far below DynamoDB's 1 KB
 *                                          (an S3 key alone may be 1 KB). pk is at most ~1.1 KB of the 2 KB allowed.
 *   RUN                   | <runKey>        one run (runKeys sort by time: newest-first listing is one Query)
 *   SLOT                  | SLOT            the run slot: holder, takenAt, wakeup; releasedBy/releasedWakeup (the
 *                                          last release, so a retried release reports what it saw)
 *   HEALTH                | HEALTH          the circuit breaker: consecutive system failures, lastRunKey
 *   GLUERUN               | <JobRunId>      → runKey
 *
 * Idempotent writes: every conditional write asks for the item as it was when its condition failed
 * (ReturnValuesOnConditionCheckFailure=ALL_OLD; a consistent read when the answer lacks it) and reports success when
 * it already is what the write makes -- the SDK retries a write whose answer was lost, and the retry then fails its
 * condition although the first try applied.
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
import { unmarshall } from "@aws-sdk/util-dynamodb";
import {
  failedPendingRecord,
  type GlueUsage,
  HEALTHY,
  type HealthRecord,
  indexIdOf,
  LEDGER_TABLE,
  type LedgerStore,
  matchesFailedPending,
  matchesFilledGlue,
  matchesPatch,
  matchesRequeued,
  matchesSettlement,
  newUploadRecord,
  pendingOrder,
  type ReconcilerPosition,
  type ReconcilerPositionStore,
  type RunRecord,
  type RunState,
  runningOrder,
  type Settlement,
  type SlotRecord,
  sameRun,
  settledFields,
  settledRecord,
  type Upload,
  type UploadRecord,
} from "@ingest/core";

const PENDING = "PENDING";
const RUNNING = "RUNNING";
const SLOT_KEY = { pk: "SLOT", sk: "SLOT" };
/** The reconciler's listing position (one item; only the reconciler reads or writes it). */
const RECONCILER_KEY = { pk: "RECONCILER", sk: "POSITION" };
const HEALTH_KEY = { pk: "HEALTH", sk: "HEALTH" };

/** The index partition of an upload: a hash of its id spread over LEDGER_TABLE.indexShards. */
export function indexShardOf(uploadId: string): number {
  return Number.parseInt(indexIdOf(uploadId).slice(0, 8), 16) % LEDGER_TABLE.indexShards;
}

/** Every index partition of a status; the unsharded one first (items written before the index was sharded). */
function partitionsOf(status: typeof PENDING | typeof RUNNING): string[] {
  return [status, ...Array.from({ length: LEDGER_TABLE.indexShards }, (_, i) => `${status}#${i}`)];
}

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

/** The item of an upload, with its index keys when pending or running (exported for the key-size tests). */
export function uploadItem(r: UploadRecord): Item {
  const { pk, sk } = uploadKey(r.uploadId);
  const shard = indexShardOf(r.uploadId);
  return {
    pk,
    sk,
    type: "upload",
    ...r,
    ...(r.status === "pending" ? { gsi1pk: `${PENDING}#${shard}`, gsi1sk: pendingOrder(r) } : {}),
    ...(r.status === "running" ? { gsi1pk: `${RUNNING}#${shard}`, gsi1sk: runningOrder(r) } : {}),
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

/** What a failed condition saw (ReturnValuesOnConditionCheckFailure=ALL_OLD); undefined when the answer lacks it. */
function itemOfConditionFailure(e: unknown): Item | null | undefined {
  const item = (e as { Item?: Record<string, unknown> }).Item;
  if (item === undefined) return undefined;
  return Object.keys(item).length === 0 ? null : (unmarshall(item as Parameters<typeof unmarshall>[0]) as Item);
}

/** One page-wise cursor over one index range, for merging partitions in sort-key order. */
interface IndexCursor {
  readonly cond: string;
  readonly values: Record<string, string>;
  buffer: Item[];
  start: Item | undefined;
  done: boolean;
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

  /**
   * Sends a conditional write (asking for ALL_OLD on a failed condition). true when it applied; on a failed
   * condition, what `alreadyDone` says of the item as it is (null: no item).
   */
  private async conditional(
    command: PutCommand | UpdateCommand,
    key: Record<string, string>,
    alreadyDone: (old: Item | null) => boolean,
  ): Promise<boolean> {
    (command.input as { ReturnValuesOnConditionCheckFailure?: string }).ReturnValuesOnConditionCheckFailure = "ALL_OLD";
    try {
      if (command instanceof PutCommand) await this.doc.send(command);
      else await this.doc.send(command);
      return true;
    } catch (e) {
      if (!isConditionFailure(e)) throw e;
      return alreadyDone(await this.oldItem(e, key));
    }
  }

  private async oldItem(e: unknown, key: Record<string, string>): Promise<Item | null> {
    const seen = itemOfConditionFailure(e);
    if (seen !== undefined) return seen;
    const r = await this.doc.send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }));
    return r.Item ?? null;
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
    const cursors = partitionsOf(PENDING).map((p) => cursor("gsi1pk = :p", { ":p": p }));
    const out = await this.mergeIndex(cursors, limit);
    // The index is eventually consistent: what it lists may have moved on; claims check the real item.
    return out.filter((u) => u.status === "pending");
  }

  claimUpload(uploadId: string, runKey: string, now: string) {
    const key = uploadKey(uploadId);
    return this.conditional(
      new UpdateCommand({
        TableName: this.table,
        Key: key,
        UpdateExpression:
          "SET #s = :running, runKey = :rk, lastRunKey = :rk, updatedAt = :now, runs = runs + :one, gsi1pk = :idx, gsi1sk = :isk",
        ConditionExpression: "#s = :pending",
        ExpressionAttributeNames: { "#s": "status" },
        ExpressionAttributeValues: {
          ":running": "running",
          ":pending": "pending",
          ":rk": runKey,
          ":now": now,
          ":one": 1,
          ":idx": `${RUNNING}#${indexShardOf(uploadId)}`,
          ":isk": runningOrder({ runKey, uploadId }),
        },
      }),
      key,
      (old) => old?.status === "running" && old.runKey === runKey,
    );
  }

  async settleUpload(uploadId: string, runKey: string, settlement: Settlement, now: string, read?: UploadRecord) {
    // processed / failed leave the index: one conditional update, no read first (a run end settles up to
    // maxFilesPerRun uploads inside the recorder's timeout; a read per upload made it 2 requests instead of 1).
    // pending goes back into the index under a sort key made from the item's receivedAt: read, then put.
    if (settlement.status !== "pending") return this.settleOut(uploadId, runKey, settlement, now);
    // A record the caller read is used only as what the put starts from: if it does not show the upload running in
    // this run, the table is asked (the caller may hold an older copy than the item).
    const current = read?.status === "running" && read.runKey === runKey ? read : await this.getUpload(uploadId);
    if (!current) return false;
    if (current.status !== "running" || current.runKey !== runKey) {
      return matchesSettlement(current, runKey, settlement, now);
    }
    return this.conditional(
      new PutCommand({
        TableName: this.table,
        Item: uploadItem(settledRecord(current, settlement, now)),
        ConditionExpression: "#s = :running AND runKey = :rk",
        ExpressionAttributeNames: { "#s": "status" },
        ExpressionAttributeValues: { ":running": "running", ":rk": runKey },
      }),
      uploadKey(uploadId),
      (old) => old !== null && matchesSettlement(toUploadRecord(old), runKey, settlement, now),
    );
  }

  /**
   * running in `runKey` → processed or failed, out of the index, in one conditional UpdateItem of `settledFields`
   * (every other attribute kept: the item `settledRecord` makes). A repeat, a lost answer's retry or a settler of
   * another run fails the condition (one write unit, as any failed conditional write) and is judged on the item it saw.
   */
  private settleOut(
    uploadId: string,
    runKey: string,
    settlement: Exclude<Settlement, { status: "pending" }>,
    now: string,
  ): Promise<boolean> {
    const key = uploadKey(uploadId);
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ":running": "running", ":rk": runKey };
    const sets: string[] = [];
    for (const [name, value] of Object.entries(settledFields(settlement, now))) {
      // Names through placeholders: some (status, error, output) are or may become DynamoDB reserved words.
      sets.push(`#${name} = :${name}`);
      names[`#${name}`] = name;
      values[`:${name}`] = value;
    }
    return this.conditional(
      new UpdateCommand({
        TableName: this.table,
        Key: key,
        UpdateExpression: `SET ${sets.join(", ")} REMOVE gsi1pk, gsi1sk`,
        ConditionExpression: "#status = :running AND runKey = :rk",
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
      key,
      (old) => old !== null && matchesSettlement(toUploadRecord(old), runKey, settlement, now),
    );
  }

  async failPendingUpload(uploadId: string, runKey: string | null, error: string, now: string) {
    const current = await this.getUpload(uploadId);
    if (!current) return false;
    if (current.status !== "pending") return matchesFailedPending(current, runKey, error, now);
    // One conditional put: pending → failed (and out of the index) or nothing; there is no step in between.
    return this.conditional(
      new PutCommand({
        TableName: this.table,
        Item: uploadItem(failedPendingRecord(current, runKey, error, now)),
        ConditionExpression: "#s = :pending",
        ExpressionAttributeNames: { "#s": "status" },
        ExpressionAttributeValues: { ":pending": "pending" },
      }),
      uploadKey(uploadId),
      (old) => old !== null && matchesFailedPending(toUploadRecord(old), runKey, error, now),
    );
  }

  /**
   * Up to `limit` uploads from several index ranges (one per partition), merged in sort-key order. Each range is read
   * page by page only as far as the merge needs it, so a backlog costs about `limit` items, not `limit` per shard.
   */
  private async mergeIndex(cursors: IndexCursor[], limit: number): Promise<UploadRecord[]> {
    const pageSize = Math.min(1000, Math.max(10, Math.ceil((2 * limit) / cursors.length)));
    const fill = async (c: IndexCursor) => {
      while (c.buffer.length === 0 && !c.done) {
        const r = await this.doc.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: LEDGER_TABLE.pendingIndex.name,
            KeyConditionExpression: c.cond,
            ExpressionAttributeValues: c.values,
            ScanIndexForward: true,
            Limit: pageSize,
            ExclusiveStartKey: c.start,
          }),
        );
        c.buffer.push(...(r.Items ?? []));
        c.start = r.LastEvaluatedKey;
        c.done = c.start === undefined;
      }
    };
    await Promise.all(cursors.map(fill));
    const out: UploadRecord[] = [];
    while (out.length < limit) {
      let next: IndexCursor | null = null;
      for (const c of cursors) {
        const head = c.buffer[0];
        if (head && (!next || String(head.gsi1sk) < String(next.buffer[0]?.gsi1sk))) next = c;
      }
      if (!next) break;
      out.push(toUploadRecord(next.buffer.shift() as Item));
      if (next.buffer.length === 0) await fill(next);
    }
    return out;
  }

  async listRunning(limit: number, exceptRunKey: string | null) {
    // Running uploads are in the sparse index under RUNNING#<shard>, sorted by <runKey>#<hash>: everything but one
    // run is at most two range queries per partition around its prefix ("$" sorts right after "#"), so the sweeper
    // reads only what is outside the slot's run (normally nothing), never the table.
    const cursors = partitionsOf(RUNNING).flatMap((p) =>
      exceptRunKey === null
        ? [cursor("gsi1pk = :r", { ":r": p })]
        : [
            cursor("gsi1pk = :r AND gsi1sk < :lo", { ":r": p, ":lo": `${exceptRunKey}#` }),
            cursor("gsi1pk = :r AND gsi1sk > :hi", { ":r": p, ":hi": `${exceptRunKey}$` }),
          ],
    );
    const out = await this.mergeIndex(cursors, limit);
    // The index is eventually consistent: what it lists may have been settled since.
    return out.filter((u) => u.status === "running" && u.runKey !== exceptRunKey);
  }

  async requeueUpload(uploadId: string, now: string) {
    const current = await this.getUpload(uploadId);
    if (!current) return false;
    if (current.status !== "failed") return matchesRequeued(current, now);
    const next: UploadRecord = {
      ...current,
      status: "pending",
      attempts: 0,
      retryGroupSize: null,
      runKey: null,
      updatedAt: now,
    };
    return this.conditional(
      new PutCommand({
        TableName: this.table,
        Item: uploadItem(next),
        ConditionExpression: "#s = :failed",
        ExpressionAttributeNames: { "#s": "status" },
        ExpressionAttributeValues: { ":failed": "failed" },
      }),
      uploadKey(uploadId),
      (old) => old !== null && matchesRequeued(toUploadRecord(old), now),
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
    const out: UploadRecord[] = [];
    let start: Item | undefined;
    do {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": `UPLOAD#${bucket}/${key}` },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of r.Items ?? []) out.push(toUploadRecord(item));
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async createRun(run: RunRecord) {
    const key = { pk: "RUN", sk: run.runKey };
    const created = await this.conditional(
      new PutCommand({
        TableName: this.table,
        Item: { ...key, type: "run", ...run },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
      key,
      (old) => old !== null && sameRun(toRunRecord(old), run),
    );
    if (!created) throw new Error(`run ${run.runKey} exists with other contents`);
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
    const key = { pk: "RUN", sk: runKey };
    return this.conditional(
      new UpdateCommand({
        TableName: this.table,
        Key: key,
        UpdateExpression: `SET ${sets.join(", ")}`,
        ConditionExpression: `attribute_exists(pk) AND #state IN (${fromNames.join(", ")})`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
      key,
      (old) => old !== null && matchesPatch(toRunRecord(old), patch),
    );
  }

  fillRunGlue(runKey: string, glue: GlueUsage) {
    const key = { pk: "RUN", sk: runKey };
    return this.conditional(
      new UpdateCommand({
        TableName: this.table,
        Key: key,
        UpdateExpression: "SET #glue = :glue",
        // Only a closed run whose close recorded no figures (null; absent: closed before they were recorded).
        ConditionExpression:
          "attribute_exists(pk) AND attribute_type(#glue, :null) AND NOT (#state IN (:starting, :running))",
        ExpressionAttributeNames: { "#glue": "glue", "#state": "state" },
        ExpressionAttributeValues: { ":glue": glue, ":null": "NULL", ":starting": "starting", ":running": "running" },
      }),
      key,
      (old) => old !== null && matchesFilledGlue(toRunRecord(old), glue),
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
    return this.conditional(
      new UpdateCommand({
        TableName: this.table,
        Key: SLOT_KEY,
        // unlaunched = the holder itself, until its fence: a held slot whose `unlaunched` is not its holder was taken
        // by code from before the fence (which neither sets nor clears it), and counts as launched (toSlotRecord),
        // so only the sweeper repairs it, asking Glue.
        UpdateExpression:
          "SET holder = :rk, takenAt = :now, wakeup = :no, unlaunched = :rk REMOVE launchedAt, launchedBy",
        ConditionExpression: "attribute_not_exists(holder)",
        ExpressionAttributeValues: { ":rk": runKey, ":now": now, ":no": false },
      }),
      SLOT_KEY,
      (old) => old?.holder === runKey,
    );
  }

  markLaunched(runKey: string, now: string) {
    return this.conditional(
      new UpdateCommand({
        TableName: this.table,
        Key: SLOT_KEY,
        UpdateExpression: "SET launchedAt = :now, launchedBy = :rk REMOVE unlaunched",
        ConditionExpression: "holder = :rk AND unlaunched = :rk",
        ExpressionAttributeValues: { ":rk": runKey, ":now": now },
      }),
      SLOT_KEY,
      // a retry after a lost answer: still ours, fence already passed
      (old) => old?.holder === runKey && old.unlaunched !== runKey,
    );
  }

  async releaseSlot(runKey: string, options: { readonly unlessLaunched?: boolean } = {}) {
    // The release records who released and the wake-up it saw, so a retry of it (after a lost answer) reports the
    // same; the wake-up is read first and made part of the condition, so none requested meanwhile is lost. A
    // revocation (`unlessLaunched`) is also conditional on the holder not having passed its launch fence.
    const unlessLaunched = options.unlessLaunched === true;
    for (let round = 0; round < 5; round++) {
      const slot = (await this.doc.send(new GetCommand({ TableName: this.table, Key: SLOT_KEY, ConsistentRead: true })))
        .Item;
      if (slot?.holder !== runKey) return releasedBefore(slot ?? null, runKey);
      if (unlessLaunched && slot.unlaunched !== runKey) return { released: false, wakeup: false };
      const wakeup = slot.wakeup === true;
      let seen: Item | null = null;
      const released = await this.conditional(
        new UpdateCommand({
          TableName: this.table,
          Key: SLOT_KEY,
          UpdateExpression:
            "SET wakeup = :no, releasedBy = :rk, releasedWakeup = :w REMOVE holder, takenAt, unlaunched, launchedAt, launchedBy",
          ConditionExpression: `holder = :rk AND wakeup = :w${unlessLaunched ? " AND unlaunched = :rk" : ""}`,
          ExpressionAttributeValues: { ":rk": runKey, ":no": false, ":w": wakeup },
        }),
        SLOT_KEY,
        (old) => {
          seen = old;
          return old?.holder !== runKey && old?.releasedBy === runKey;
        },
      );
      if (released) return { released: true, wakeup: seen ? (seen as Item).releasedWakeup === true : wakeup };
      if ((seen as Item | null)?.holder !== runKey) return { released: false, wakeup: false };
      // still ours: the wake-up flag changed under us, or the holder launched (the next round's read says which)
    }
    throw new Error(`could not release the run slot held by ${runKey}: its wake-up flag kept changing`);
  }

  async requestWakeup(): Promise<SlotRecord | null> {
    try {
      const r = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: SLOT_KEY,
          UpdateExpression: "SET wakeup = :yes",
          ConditionExpression: "attribute_exists(holder)",
          ExpressionAttributeValues: { ":yes": true },
          ReturnValues: "ALL_NEW",
        }),
      );
      return toSlotRecord(r.Attributes ?? null);
    } catch (e) {
      // The slot is free (a retry after a lost answer may also land here: the slot was released in between, and its
      // holder's release saw the first try's wake-up).
      if (isConditionFailure(e)) return null;
      throw e;
    }
  }

  async getSlot(): Promise<SlotRecord> {
    const r = await this.doc.send(new GetCommand({ TableName: this.table, Key: SLOT_KEY, ConsistentRead: true }));
    return toSlotRecord(r.Item ?? null);
  }

  async getHealth(): Promise<HealthRecord> {
    const r = await this.doc.send(new GetCommand({ TableName: this.table, Key: HEALTH_KEY, ConsistentRead: true }));
    return toHealth(r.Item ?? null);
  }

  async recordRunHealth(runKey: string, outcome: "system-failure" | "healthy", now: string): Promise<HealthRecord> {
    const failure = outcome === "system-failure";
    try {
      const r = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: HEALTH_KEY,
          UpdateExpression: failure
            ? "SET consecutiveSystemFailures = if_not_exists(consecutiveSystemFailures, :zero) + :one, lastRunKey = :rk, lastFailureAt = :now"
            : "SET consecutiveSystemFailures = :zero, lastRunKey = :rk",
          ConditionExpression: "attribute_not_exists(lastRunKey) OR lastRunKey <> :rk",
          ExpressionAttributeValues: { ":rk": runKey, ":zero": 0, ...(failure ? { ":one": 1, ":now": now } : {}) },
          ReturnValues: "ALL_NEW",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return toHealth(r.Attributes ?? null);
    } catch (e) {
      // this run's outcome is counted already (a retry, or a second settler)
      if (isConditionFailure(e)) return toHealth(await this.oldItem(e, HEALTH_KEY));
      throw e;
    }
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

function toHealth(item: Item | null): HealthRecord {
  if (!item) return HEALTHY;
  return {
    consecutiveSystemFailures: Number(item.consecutiveSystemFailures ?? 0),
    lastRunKey: (item.lastRunKey as string | undefined) ?? null,
    lastFailureAt: (item.lastFailureAt as string | undefined) ?? null,
  };
}

/** A release of a slot no longer held by `runKey`: success when its own last release did it (a retry). */
function toSlotRecord(item: Item | null): SlotRecord {
  return {
    holder: (item?.holder as string | undefined) ?? null,
    takenAt: (item?.takenAt as string | undefined) ?? null,
    wakeup: item?.wakeup === true,
    // held, and not marked unlaunched by this holder: past its fence, or taken by code from before the fence
    launched: typeof item?.holder === "string" && item.unlaunched !== item.holder,
    // only this holder's fence time (an older version's release leaves an earlier holder's behind)
    launchedAt:
      typeof item?.holder === "string" && item.launchedBy === item.holder
        ? ((item.launchedAt as string | undefined) ?? null)
        : null,
  };
}

function releasedBefore(slot: Item | null, runKey: string): { released: boolean; wakeup: boolean } {
  return slot?.releasedBy === runKey
    ? { released: true, wakeup: slot.releasedWakeup === true }
    : { released: false, wakeup: false };
}

function cursor(cond: string, values: Record<string, string>): IndexCursor {
  return { cond, values, buffer: [], start: undefined, done: false };
}
