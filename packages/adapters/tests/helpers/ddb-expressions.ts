/**
 * DynamoDB's expression languages (condition, key condition, filter, update), evaluated over plain JS items, for
 * the fake DynamoDB of fake-aws.ts. Covers top-level attributes: comparisons, BETWEEN, IN, AND/OR/NOT, parentheses,
 * attribute_exists / attribute_not_exists / begins_with / attribute_type / contains / size; SET (with + / -,
 * if_not_exists, list_append), REMOVE, ADD. Anything else is refused with an error naming it, so a new expression in
 * the adapters fails loudly rather than being evaluated wrongly.
 */

export type Value = string | number | boolean | null | Value[] | { [k: string]: Value } | Uint8Array;
export type Item = Record<string, Value>;

type Tok = { t: "name" | "value" | "ident" | "op" | "num"; v: string };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === "<>" || two === "<=" || two === ">=") {
      out.push({ t: "op", v: two });
      i += 2;
      continue;
    }
    if ("=<>(),+-.[]".includes(c)) {
      out.push({ t: "op", v: c });
      i++;
      continue;
    }
    const m = /^[#:]?[A-Za-z0-9_]+/.exec(src.slice(i));
    if (!m) throw new Error(`fake DynamoDB: cannot read expression at "${src.slice(i)}"`);
    const word = m[0];
    out.push({ t: word.startsWith("#") ? "name" : word.startsWith(":") ? "value" : "ident", v: word });
    i += word.length;
  }
  return out;
}

export interface Ctx {
  readonly names: Record<string, string>;
  readonly values: Record<string, Value>;
}

type Operand = { kind: "path"; name: string } | { kind: "value"; value: Value } | { kind: "size"; name: string };

class Parser {
  private i = 0;
  constructor(
    private readonly toks: Tok[],
    private readonly ctx: Ctx,
    private readonly src: string,
  ) {}

  private peek(): Tok | undefined {
    return this.toks[this.i];
  }
  private next(): Tok {
    const t = this.toks[this.i++];
    if (!t) throw new Error(`fake DynamoDB: unexpected end of "${this.src}"`);
    return t;
  }
  private expect(v: string): void {
    const t = this.next();
    if (t.v !== v) throw new Error(`fake DynamoDB: expected "${v}" in "${this.src}", got "${t.v}"`);
  }
  private isKeyword(word: string): boolean {
    const t = this.peek();
    return t?.t === "ident" && t.v.toUpperCase() === word;
  }
  done(): boolean {
    return this.i >= this.toks.length;
  }

  path(): string {
    const t = this.next();
    let name: string;
    if (t.t === "name") {
      const n = this.ctx.names[t.v];
      if (n === undefined) throw new Error(`fake DynamoDB: ${t.v} is not in ExpressionAttributeNames`);
      name = n;
    } else if (t.t === "ident") name = t.v;
    else throw new Error(`fake DynamoDB: expected an attribute in "${this.src}", got "${t.v}"`);
    const after = this.peek();
    if (after?.v === "." || after?.v === "[") {
      throw new Error(`fake DynamoDB: nested paths are not modelled ("${this.src}")`);
    }
    return name;
  }

  operand(): Operand {
    const t = this.peek();
    if (t?.t === "value") {
      this.i++;
      if (!(t.v in this.ctx.values)) throw new Error(`fake DynamoDB: ${t.v} is not in ExpressionAttributeValues`);
      return { kind: "value", value: this.ctx.values[t.v] as Value };
    }
    if (t?.t === "ident" && t.v === "size") {
      this.i++;
      this.expect("(");
      const name = this.path();
      this.expect(")");
      return { kind: "size", name };
    }
    return { kind: "path", name: this.path() };
  }

  // condition := or
  condition(): (item: Item | undefined) => boolean {
    return this.or();
  }
  private or(): (item: Item | undefined) => boolean {
    let left = this.and();
    while (this.isKeyword("OR")) {
      this.i++;
      const l = left;
      const r = this.and();
      left = (it) => l(it) || r(it);
    }
    return left;
  }
  private and(): (item: Item | undefined) => boolean {
    let left = this.not();
    while (this.isKeyword("AND")) {
      this.i++;
      const l = left;
      const r = this.not();
      left = (it) => l(it) && r(it);
    }
    return left;
  }
  private not(): (item: Item | undefined) => boolean {
    if (this.isKeyword("NOT")) {
      this.i++;
      const inner = this.not();
      return (it) => !inner(it);
    }
    return this.primary();
  }
  private primary(): (item: Item | undefined) => boolean {
    const t = this.peek();
    if (t?.v === "(") {
      this.i++;
      const inner = this.or();
      this.expect(")");
      return inner;
    }
    if (t?.t === "ident" && this.toks[this.i + 1]?.v === "(" && t.v !== "size") {
      const fn = t.v;
      this.i += 2;
      const name = this.path();
      let arg: Operand | null = null;
      if (this.peek()?.v === ",") {
        this.i++;
        arg = this.operand();
      }
      this.expect(")");
      switch (fn) {
        case "attribute_exists":
          return (it) => it !== undefined && it[name] !== undefined;
        case "attribute_not_exists":
          return (it) => it === undefined || it[name] === undefined;
        case "begins_with":
          return (it) => {
            const v = it?.[name];
            const p = arg ? read(arg, it) : undefined;
            return typeof v === "string" && typeof p === "string" && v.startsWith(p);
          };
        case "attribute_type":
          // DynamoDB's type names for the values this fake holds (sets are not modelled)
          return (it) => {
            const v = it?.[name];
            const type =
              v === undefined
                ? undefined
                : v === null
                  ? "NULL"
                  : typeof v === "string"
                    ? "S"
                    : typeof v === "number"
                      ? "N"
                      : typeof v === "boolean"
                        ? "BOOL"
                        : v instanceof Uint8Array
                          ? "B"
                          : Array.isArray(v)
                            ? "L"
                            : "M";
            return type !== undefined && type === (arg ? read(arg, it) : undefined);
          };
        case "contains":
          return (it) => {
            const v = it?.[name];
            const p = arg ? read(arg, it) : undefined;
            if (typeof v === "string" && typeof p === "string") return v.includes(p);
            return Array.isArray(v) && v.some((x) => equal(x, p as Value));
          };
        default:
          throw new Error(`fake DynamoDB: function ${fn} is not modelled ("${this.src}")`);
      }
    }
    const left = this.operand();
    if (this.isKeyword("BETWEEN")) {
      this.i++;
      const lo = this.operand();
      if (!this.isKeyword("AND")) throw new Error(`fake DynamoDB: BETWEEN without AND in "${this.src}"`);
      this.i++;
      const hi = this.operand();
      return (it) => {
        const v = read(left, it);
        return v !== undefined && compare(v, read(lo, it)) >= 0 && compare(v, read(hi, it)) <= 0;
      };
    }
    if (this.isKeyword("IN")) {
      this.i++;
      this.expect("(");
      const list: Operand[] = [this.operand()];
      while (this.peek()?.v === ",") {
        this.i++;
        list.push(this.operand());
      }
      this.expect(")");
      return (it) => {
        const v = read(left, it);
        return v !== undefined && list.some((o) => equal(v, read(o, it)));
      };
    }
    const op = this.next();
    if (op.t !== "op" || !["=", "<>", "<", "<=", ">", ">="].includes(op.v)) {
      throw new Error(`fake DynamoDB: expected a comparison in "${this.src}", got "${op.v}"`);
    }
    const right = this.operand();
    return (it) => {
      const a = read(left, it);
      const b = read(right, it);
      if (op.v === "<>") return a === undefined || b === undefined ? a !== b : !equal(a, b);
      if (a === undefined || b === undefined) return false;
      if (op.v === "=") return equal(a, b);
      if (typeof a !== typeof b) return false;
      const c = compare(a, b);
      return op.v === "<" ? c < 0 : op.v === "<=" ? c <= 0 : op.v === ">" ? c > 0 : c >= 0;
    };
  }

  /** update := (SET a=.., | REMOVE a, | ADD a v,)+ ; every right-hand side reads the item as it was before. */
  update(): (item: Item) => Item {
    const actions: ((before: Item, out: Item) => void)[] = [];
    const more = () => {
      if (this.peek()?.v !== ",") return false;
      this.i++;
      return true;
    };
    while (!this.done()) {
      const kw = this.next();
      const k = kw.v.toUpperCase();
      if (k === "SET") {
        do {
          const name = this.path();
          this.expect("=");
          const value = this.setValue();
          actions.push((before, out) => {
            out[name] = value(before);
          });
        } while (more());
      } else if (k === "REMOVE") {
        do {
          const name = this.path();
          actions.push((_before, out) => {
            delete out[name];
          });
        } while (more());
      } else if (k === "ADD") {
        do {
          const name = this.path();
          const v = this.operand();
          actions.push((before, out) => {
            const add = read(v, before);
            const cur = before[name];
            if (typeof add !== "number") throw new Error("fake DynamoDB: ADD is modelled for numbers only");
            out[name] = (typeof cur === "number" ? cur : 0) + add;
          });
        } while (more());
      } else {
        throw new Error(`fake DynamoDB: update clause ${kw.v} is not modelled ("${this.src}")`);
      }
    }
    return (item) => {
      const out = structuredClone(item);
      for (const a of actions) a(item, out);
      return out;
    };
  }

  private setValue(): (item: Item) => Value {
    const first = this.setTerm();
    const op = this.peek();
    if (op?.v === "+" || op?.v === "-") {
      this.i++;
      const second = this.setTerm();
      return (it) => {
        const a = first(it);
        const b = second(it);
        if (typeof a !== "number" || typeof b !== "number") throw new Error(`fake DynamoDB: ${op.v} on non-numbers`);
        return op.v === "+" ? a + b : a - b;
      };
    }
    return first;
  }

  private setTerm(): (item: Item) => Value {
    const t = this.peek();
    if (t?.t === "ident" && (t.v === "if_not_exists" || t.v === "list_append") && this.toks[this.i + 1]?.v === "(") {
      this.i += 2;
      if (t.v === "if_not_exists") {
        const name = this.path();
        this.expect(",");
        const dflt = this.operand();
        this.expect(")");
        return (it) => (it[name] !== undefined ? (it[name] as Value) : (read(dflt, it) as Value));
      }
      const a = this.operand();
      this.expect(",");
      const b = this.operand();
      this.expect(")");
      return (it) => [...((read(a, it) as Value[]) ?? []), ...((read(b, it) as Value[]) ?? [])];
    }
    const o = this.operand();
    return (it) => {
      const v = read(o, it);
      if (v === undefined) throw new Error(`fake DynamoDB: SET reads a missing attribute ("${this.src}")`);
      return v;
    };
  }
}

function read(o: Operand, item: Item | undefined): Value | undefined {
  if (o.kind === "value") return o.value;
  const v = item?.[o.name];
  if (o.kind === "size") {
    if (typeof v === "string") return Buffer.byteLength(v, "utf8");
    if (Array.isArray(v)) return v.length;
    if (v && typeof v === "object") return Object.keys(v).length;
    return undefined;
  }
  return v;
}

export function equal(a: Value | undefined, b: Value | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** DynamoDB orders strings by their UTF-8 bytes, numbers numerically. */
export function compare(a: Value | undefined, b: Value | undefined): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "string" && typeof b === "string") return Buffer.compare(Buffer.from(a), Buffer.from(b));
  throw new Error(`fake DynamoDB: cannot order ${typeof a} and ${typeof b}`);
}

export function parseCondition(src: string, ctx: Ctx): (item: Item | undefined) => boolean {
  const p = new Parser(tokenize(src), ctx, src);
  const f = p.condition();
  if (!p.done()) throw new Error(`fake DynamoDB: trailing input in condition "${src}"`);
  return f;
}

export function parseUpdate(src: string, ctx: Ctx): (item: Item) => Item {
  return new Parser(tokenize(src), ctx, src).update();
}
