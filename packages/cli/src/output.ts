/** Terminal output: tables, durations, a progress bar (stderr, only on a TTY), and --json. */

/**
 * Untrusted text (keys, error texts quoting an uploaded header) made safe for a terminal: every control character
 * (C0 incl. newline, CR, tab and ESC; DEL; C1), every bidirectional or line/paragraph-separator format character,
 * and the backslash itself are written as visible escapes (`\n`, `\x1b`, `\u202e`, `\\`), so no escape sequence
 * reaches the terminal and one record stays on one line. `--json` output is never passed through this (JSON.stringify
 * escapes control characters itself, exactly).
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (ch) => {
    const named = NAMED_ESCAPES[ch];
    if (named) return named;
    const code = ch.codePointAt(0) ?? 0;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

// C0, DEL, C1; ALM, LRM/RLM, LRE..RLO, LRI..PDI; line and paragraph separators; the backslash (so escapes are unambiguous).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\\]/g;
const NAMED_ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\" };

/**
 * A closed stdout (`ingest status | head`) ends the command quietly with exit 0, as `cat` or `ls` do, instead of an
 * unhandled EPIPE stack trace. Other write errors still surface.
 */
export function exitQuietlyOnEpipe(stream: NodeJS.EventEmitter, exit: (code: number) => void = process.exit): void {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") return exit(0);
    throw error;
  });
}

export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => string;
  readonly align?: "left" | "right";
}

export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => printable(c.value(r))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => (row[i] ?? "").length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => (columns[i]?.align === "right" ? v.padStart(widths[i] ?? 0) : v.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join("\n");
}

export function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return "-";
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, "0")}s`;
}

export function between(from: string | null, to: string | null, now = new Date()): number | null {
  if (!from) return null;
  return (to ? new Date(to) : now).getTime() - new Date(from).getTime();
}

export const num = (n: number | null | undefined) => (n === null || n === undefined ? "-" : String(n));

export function printJson(doc: unknown): void {
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
}

/** A one-line progress bar on stderr; silent when stderr is not a terminal or output is --json. */
export class Progress {
  private readonly tty: boolean;
  private last = "";

  constructor(
    private readonly label: string,
    private readonly total: number,
    enabled = true,
  ) {
    this.tty = enabled && Boolean(process.stderr.isTTY);
  }

  update(done: number, extra = ""): void {
    if (!this.tty) return;
    const width = 30;
    const filled = this.total > 0 ? Math.round((done / this.total) * width) : width;
    const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
    const text = `${this.label} ${bar} ${done}/${this.total}${extra ? ` ${extra}` : ""}`;
    if (text === this.last) return;
    this.last = text;
    process.stderr.write(`\r\x1b[2K${text}`);
  }

  /** A status line without a bar (for `wait`). */
  status(text: string): void {
    if (!this.tty || text === this.last) return;
    this.last = text;
    process.stderr.write(`\r\x1b[2K${this.label} ${text}`);
  }

  done(): void {
    if (this.tty && this.last) process.stderr.write("\r\x1b[2K");
    this.last = "";
  }
}
