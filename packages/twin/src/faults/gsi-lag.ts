/**
 * GSI lag: on AWS a global secondary index is updated asynchronously ("within a second, usually"), so an index Query
 * can miss an item written a moment ago, or still show it as it was (e.g. still pending after it was claimed).
 * moto's indexes are immediate. This models the lag faithfully for the twin's tables:
 *  - before forwarding a write (PutItem, UpdateItem, DeleteItem, TransactWriteItems, BatchWriteItem) to a table, it
 *    reads the item's image (consistent GetItem) and remembers it with the write's time;
 *  - when `gsiLag` strikes an index Query, every item written in the last `gsiLagMs` is answered as it was before the
 *    first of those writes: the current image is replaced by the old one if the old one was in the index and matches
 *    the key condition, or dropped; old images missing from the page are added (last page, or inside the page's
 *    range), and the page is re-sorted by the index's keys.
 * Key conditions understood: `hk = :v` optionally with `AND rk (=|<|<=|>|>=) :w`, `AND rk BETWEEN :a AND :b` or
 * `AND begins_with(rk, :p)` (names or #placeholders). Other queries are answered unlagged (and logged once).
 */

import type { FaultDice } from "./config.js";
import type { DescribedCall } from "./describe.js";

type AttributeValue = Record<string, unknown>;
type Item = Record<string, AttributeValue>;

interface TableShape {
  readonly keys: readonly string[];
  readonly indexes: ReadonlyMap<string, { hash: string; range?: string | undefined }>;
}

export interface GsiLagBackend {
  /** DescribeTable's key schema of `table` (cached by the caller). */
  describe(table: string): Promise<TableShape>;
  /** A consistent read of one item, straight from the emulator (not recorded, no faults). */
  getItem(table: string, key: Item): Promise<Item | null>;
}

interface Upstream {
  readonly status: number;
  readonly headers: import("node:http").IncomingHttpHeaders;
  readonly body: Buffer;
}

const WRITES = new Set(["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"]);

const scalar = (v: AttributeValue | undefined): string | undefined => {
  if (!v) return undefined;
  if (typeof v.S === "string") return v.S;
  if (typeof v.N === "string") return v.N;
  if (typeof v.B === "string") return v.B;
  return undefined;
};

function compare(a: AttributeValue | undefined, b: AttributeValue | undefined): number {
  if (a && b && typeof a.N === "string" && typeof b.N === "string") return Number(a.N) - Number(b.N);
  const x = scalar(a) ?? "";
  const y = scalar(b) ?? "";
  return x < y ? -1 : x > y ? 1 : 0;
}

interface Condition {
  readonly hash: { name: string; value: AttributeValue };
  readonly range?: { name: string; op: string; values: AttributeValue[] };
}

/** Parses the key condition forms listed above; null = not understood. */
export function parseKeyCondition(
  expr: string,
  names: Record<string, string> = {},
  values: Record<string, AttributeValue> = {},
): Condition | null {
  const name = (n: string) => (n.startsWith("#") ? names[n] : n);
  const val = (v: string) => values[v];
  const parts = expr.split(/\s+AND\s+(?![^(]*\))/i).map((s) => s.trim());
  // BETWEEN's own AND: re-join "x BETWEEN :a" + ":b"
  const joined: string[] = [];
  for (const p of parts) {
    const last = joined.at(-1);
    if (last && /\bBETWEEN\s+\S+$/i.test(last)) joined[joined.length - 1] = `${last} AND ${p}`;
    else joined.push(p);
  }
  let hash: Condition["hash"] | null = null;
  let range: Condition["range"];
  for (const p of joined) {
    const eq = /^\(?\s*([#\w]+)\s*(=|<=|>=|<|>)\s*(:\w+)\s*\)?$/.exec(p);
    const between = /^\(?\s*([#\w]+)\s+BETWEEN\s+(:\w+)\s+AND\s+(:\w+)\s*\)?$/i.exec(p);
    const begins = /^begins_with\s*\(\s*([#\w]+)\s*,\s*(:\w+)\s*\)$/i.exec(p);
    if (eq?.[1] && eq[2] && eq[3]) {
      const n = name(eq[1]);
      const v = val(eq[3]);
      if (!n || !v) return null;
      if (eq[2] === "=" && !hash) hash = { name: n, value: v };
      else range = { name: n, op: eq[2], values: [v] };
    } else if (between?.[1] && between[2] && between[3]) {
      const n = name(between[1]);
      const a = val(between[2]);
      const b = val(between[3]);
      if (!n || !a || !b) return null;
      range = { name: n, op: "BETWEEN", values: [a, b] };
    } else if (begins?.[1] && begins[2]) {
      const n = name(begins[1]);
      const v = val(begins[2]);
      if (!n || !v) return null;
      range = { name: n, op: "begins_with", values: [v] };
    } else {
      return null;
    }
  }
  return hash ? { hash, ...(range ? { range } : {}) } : null;
}

export function matches(item: Item, c: Condition): boolean {
  if (compare(item[c.hash.name], c.hash.value) !== 0 || item[c.hash.name] === undefined) return false;
  if (!c.range) return true;
  const v = item[c.range.name];
  if (v === undefined) return false;
  const [a, b] = c.range.values;
  switch (c.range.op) {
    case "=":
      return compare(v, a) === 0;
    case "<":
      return compare(v, a) < 0;
    case "<=":
      return compare(v, a) <= 0;
    case ">":
      return compare(v, a) > 0;
    case ">=":
      return compare(v, a) >= 0;
    case "BETWEEN":
      return compare(v, a) >= 0 && compare(v, b) <= 0;
    case "begins_with":
      return (scalar(v) ?? "").startsWith(scalar(a) ?? "\u0000");
    default:
      return false;
  }
}

interface Write {
  readonly at: number;
  readonly before: Item | null;
}

export class GsiLag {
  private readonly shapes = new Map<string, Promise<TableShape>>();
  /** table → item key (JSON) → writes, oldest first, pruned past the lag. */
  private readonly writes = new Map<string, Map<string, Write[]>>();
  private readonly warned = new Set<string>();

  constructor(
    private readonly dice: FaultDice,
    private readonly backend: GsiLagBackend,
    private readonly now: () => number = Date.now,
    private readonly log?: { warn(m: string): void },
  ) {}

  private get lagMs(): number {
    return this.dice.setting("gsiLagMs");
  }

  /** True for the DynamoDB calls the lag needs to see (writes, to remember; index Queries, to lag). */
  applies(call: DescribedCall): boolean {
    if (call.service !== "dynamodb" || this.dice.rate("gsiLag") <= 0) return false;
    return WRITES.has(call.operation) || (call.operation === "Query" && typeof call.input?.IndexName === "string");
  }

  private shape(table: string): Promise<TableShape> {
    let s = this.shapes.get(table);
    if (!s) {
      s = this.backend.describe(table);
      s.catch(() => this.shapes.delete(table));
      this.shapes.set(table, s);
    }
    return s;
  }

  /** Runs `forward` (the call itself) with the lag's bookkeeping around it. */
  async around<U extends Upstream>(call: DescribedCall, forward: () => Promise<U>): Promise<U> {
    const input = call.input ?? {};
    if (call.operation === "Query") {
      const up = await forward();
      if (up.status !== 200 || !this.dice.roll("gsiLag")) return up;
      return this.lagged(input, up);
    }
    const targets = writeTargets(call.operation, input);
    const remembered: { table: string; key: string; before: Item | null }[] = [];
    for (const t of targets) {
      try {
        const shape = await this.shape(t.table);
        if (shape.indexes.size === 0) continue;
        const key = keyOf(t.key ?? t.item ?? {}, shape.keys);
        if (!key) continue;
        const before = await this.backend.getItem(t.table, key);
        remembered.push({ table: t.table, key: JSON.stringify(key), before });
      } catch (e) {
        this.warnOnce(`read-${t.table}`, `gsi lag: could not read the item before a write to ${t.table}: ${String(e)}`);
      }
    }
    const up = await forward();
    if (up.status === 200) {
      const at = this.now();
      for (const r of remembered) {
        let perTable = this.writes.get(r.table);
        if (!perTable) {
          perTable = new Map();
          this.writes.set(r.table, perTable);
        }
        const list = perTable.get(r.key) ?? [];
        list.push({ at, before: r.before });
        perTable.set(r.key, list);
      }
    }
    return up;
  }

  private prune(table: string, now: number): Map<string, Write[]> {
    const perTable = this.writes.get(table) ?? new Map<string, Write[]>();
    for (const [k, list] of perTable) {
      const keep = list.filter((w) => w.at > now - this.lagMs);
      if (keep.length === 0) perTable.delete(k);
      else if (keep.length !== list.length) perTable.set(k, keep);
    }
    return perTable;
  }

  private async lagged<U extends Upstream>(input: Record<string, unknown>, up: U): Promise<U> {
    const table = String(input.TableName);
    const indexName = String(input.IndexName);
    const shape = await this.shape(table);
    const index = shape.indexes.get(indexName);
    const cond = parseKeyCondition(
      String(input.KeyConditionExpression ?? ""),
      (input.ExpressionAttributeNames as Record<string, string>) ?? {},
      (input.ExpressionAttributeValues as Record<string, AttributeValue>) ?? {},
    );
    if (!index || !cond || input.Select === "COUNT") {
      this.warnOnce(
        `q-${indexName}-${String(input.KeyConditionExpression)}`,
        `gsi lag: query not lagged: ${String(input.KeyConditionExpression)}`,
      );
      return up;
    }
    const recent = this.prune(table, this.now());
    if (recent.size === 0) return up;
    const answer = JSON.parse(up.body.toString("utf8")) as { Items?: Item[]; Count?: number; LastEvaluatedKey?: Item };
    const page = answer.Items ?? [];
    const stale = (k: string): Item | null => recent.get(k)?.[0]?.before ?? null;
    const inIndex = (item: Item | null): item is Item =>
      !!item &&
      item[index.hash] !== undefined &&
      (!index.range || item[index.range] !== undefined) &&
      matches(item, cond);
    const seen = new Set<string>();
    const out: Item[] = [];
    for (const item of page) {
      const k = JSON.stringify(keyOf(item, shape.keys));
      seen.add(k);
      if (!recent.has(k)) out.push(item);
      else {
        const old = stale(k);
        if (inIndex(old)) out.push(old);
      }
    }
    const forward = input.ScanIndexForward !== false;
    const sortKey = index.range;
    const last = page.at(-1);
    for (const [k] of recent) {
      if (seen.has(k)) continue;
      const old = stale(k);
      if (!inIndex(old)) continue;
      const inRange =
        !answer.LastEvaluatedKey ||
        !sortKey ||
        !last ||
        (forward ? compare(old[sortKey], last[sortKey]) <= 0 : compare(old[sortKey], last[sortKey]) >= 0);
      if (inRange) out.push(old);
    }
    if (sortKey) out.sort((a, b) => (forward ? 1 : -1) * compare(a[sortKey], b[sortKey]));
    const body = Buffer.from(JSON.stringify({ ...answer, Items: out, Count: out.length }));
    return { ...up, headers: { ...up.headers, "content-length": String(body.length) }, body };
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log?.warn(message);
  }
}

function keyOf(item: Item, keys: readonly string[]): Item | null {
  const out: Item = {};
  for (const k of keys) {
    const v = item[k];
    if (!v) return null;
    out[k] = v;
  }
  return out;
}

function writeTargets(op: string, input: Record<string, unknown>): { table: string; key?: Item; item?: Item }[] {
  const T = (x: unknown) => String(x ?? "");
  switch (op) {
    case "PutItem":
      return [{ table: T(input.TableName), item: input.Item as Item }];
    case "UpdateItem":
    case "DeleteItem":
      return [{ table: T(input.TableName), key: input.Key as Item }];
    case "TransactWriteItems": {
      const items = Array.isArray(input.TransactItems)
        ? (input.TransactItems as Record<string, Record<string, unknown>>[])
        : [];
      const out: { table: string; key?: Item; item?: Item }[] = [];
      for (const it of items) {
        if (it.Put) out.push({ table: T(it.Put.TableName), item: it.Put.Item as Item });
        if (it.Update) out.push({ table: T(it.Update.TableName), key: it.Update.Key as Item });
        if (it.Delete) out.push({ table: T(it.Delete.TableName), key: it.Delete.Key as Item });
      }
      return out;
    }
    case "BatchWriteItem": {
      const out: { table: string; key?: Item; item?: Item }[] = [];
      for (const [table, reqs] of Object.entries(
        (input.RequestItems as Record<string, Record<string, { Item?: Item; Key?: Item }>[]>) ?? {},
      )) {
        for (const r of reqs) {
          if (r.PutRequest?.Item) out.push({ table, item: r.PutRequest.Item });
          if (r.DeleteRequest?.Key) out.push({ table, key: r.DeleteRequest.Key });
        }
      }
      return out;
    }
    default:
      return [];
  }
}

/** The emulator-side backend: DescribeTable and GetItem straight to moto, signed as nobody in particular. */
export function motoGsiBackend(endpoint: string): GsiLagBackend {
  const post = async (target: string, body: unknown): Promise<Record<string, unknown>> => {
    const r = await fetch(endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": `DynamoDB_20120810.${target}`,
        authorization:
          "AWS4-HMAC-SHA256 Credential=twin/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
      },
      body: JSON.stringify(body),
    });
    const json = (await r.json()) as Record<string, unknown>;
    if (!r.ok) throw new Error(`${target}: ${JSON.stringify(json)}`);
    return json;
  };
  return {
    async describe(table) {
      const r = (await post("DescribeTable", { TableName: table })) as {
        Table?: {
          KeySchema?: { AttributeName: string; KeyType: string }[];
          GlobalSecondaryIndexes?: { IndexName: string; KeySchema: { AttributeName: string; KeyType: string }[] }[];
        };
      };
      const keys = (r.Table?.KeySchema ?? []).map((k) => k.AttributeName);
      const indexes = new Map<string, { hash: string; range?: string }>();
      for (const g of r.Table?.GlobalSecondaryIndexes ?? []) {
        const hash = g.KeySchema.find((k) => k.KeyType === "HASH")?.AttributeName;
        const range = g.KeySchema.find((k) => k.KeyType === "RANGE")?.AttributeName;
        if (hash) indexes.set(g.IndexName, { hash, ...(range ? { range } : {}) });
      }
      return { keys, indexes };
    },
    async getItem(table, key) {
      const r = await post("GetItem", { TableName: table, Key: key, ConsistentRead: true });
      return (r.Item as Item | undefined) ?? null;
    },
  };
}
