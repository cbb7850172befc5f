/** Terminal output: tables, durations, a progress bar (stderr, only on a TTY), and --json. */

export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => string;
  readonly align?: "left" | "right";
}

export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => c.value(r)));
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
