/**
 * A DynamoDB limit moto does not enforce on UpdateItem (it does on PutItem): an index key attribute's value may be at
 * most 2,048 bytes (partition key) / 1,024 bytes (sort key). AWS rejects such an UpdateItem (or a transaction's Update)
 * with a ValidationException; the proxy answers the same before the request reaches moto. Always on (a fidelity fix,
 * not a fault).
 */
import type { DescribedCall } from "./describe.js";
import type { GsiLagBackend } from "./gsi-lag.js";

type AttributeValue = Record<string, unknown>;

export const HASH_KEY_LIMIT_BYTES = 2048;
export const RANGE_KEY_LIMIT_BYTES = 1024;

/** `SET a = :x, #b = :y REMOVE c` → { a: ":x", "#b": ":y" } (plain assignments of one placeholder only). */
export function setAssignments(expr: string): Record<string, string> {
  const out: Record<string, string> = {};
  const m = /\bSET\b([\s\S]*?)(?=\b(?:REMOVE|ADD|DELETE)\b|$)/i.exec(expr);
  if (!m?.[1]) return out;
  let depth = 0;
  let start = 0;
  const parts: string[] = [];
  const body = m[1];
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      parts.push(body.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(body.slice(start));
  for (const p of parts) {
    const a = /^\s*([#\w]+)\s*=\s*(:\w+)\s*$/.exec(p);
    if (a?.[1] && a[2]) out[a[1]] = a[2];
  }
  return out;
}

const size = (v: AttributeValue | undefined): number => {
  if (!v) return 0;
  if (typeof v.S === "string") return Buffer.byteLength(v.S);
  if (typeof v.B === "string") return Buffer.from(v.B, "base64").length;
  if (typeof v.N === "string") return v.N.length;
  return 0;
};

export class DynamoKeyLimits {
  private readonly shapes = new Map<string, Promise<{ hash: Set<string>; range: Set<string> }>>();

  constructor(private readonly backend: GsiLagBackend) {}

  private keysOf(table: string) {
    let s = this.shapes.get(table);
    if (!s) {
      s = this.backend.describe(table).then((shape) => {
        const hash = new Set<string>();
        const range = new Set<string>();
        for (const i of shape.indexes.values()) {
          hash.add(i.hash);
          if (i.range) range.add(i.range);
        }
        return { hash, range };
      });
      s.catch(() => this.shapes.delete(table));
      this.shapes.set(table, s);
    }
    return s;
  }

  /** The ValidationException message AWS would answer, or null. */
  async violation(call: DescribedCall): Promise<string | null> {
    if (call.service !== "dynamodb" || !call.input) return null;
    const updates: Record<string, unknown>[] = [];
    if (call.operation === "UpdateItem") updates.push(call.input);
    if (call.operation === "TransactWriteItems" && Array.isArray(call.input.TransactItems)) {
      for (const t of call.input.TransactItems as { Update?: Record<string, unknown> }[])
        if (t.Update) updates.push(t.Update);
    }
    for (const u of updates) {
      const table = typeof u.TableName === "string" ? u.TableName : null;
      if (!table || typeof u.UpdateExpression !== "string") continue;
      const keys = await this.keysOf(table).catch(() => null);
      if (!keys) continue;
      const names = (u.ExpressionAttributeNames as Record<string, string> | undefined) ?? {};
      const values = (u.ExpressionAttributeValues as Record<string, AttributeValue> | undefined) ?? {};
      for (const [path, placeholder] of Object.entries(setAssignments(u.UpdateExpression))) {
        const name = path.startsWith("#") ? names[path] : path;
        if (!name) continue;
        const bytes = size(values[placeholder]);
        if (keys.range.has(name) && bytes > RANGE_KEY_LIMIT_BYTES) {
          return `One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of ${RANGE_KEY_LIMIT_BYTES} bytes (index key ${name}: ${bytes} bytes)`;
        }
        if (keys.hash.has(name) && bytes > HASH_KEY_LIMIT_BYTES) {
          return `One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of ${HASH_KEY_LIMIT_BYTES} bytes (index key ${name}: ${bytes} bytes)`;
        }
      }
    }
    return null;
  }
}
