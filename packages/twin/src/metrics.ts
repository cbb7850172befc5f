/**
 * The handlers' metrics. On Lambda, Powertools writes each invocation's metrics as an EMF document to stdout and
 * CloudWatch turns it into metric data points (namespace CsvIngest), which the alarms watch. In the twin the same
 * documents are captured instead of printed and recorded, one data point per line, in `<twinDir>/metrics.jsonl`
 * (`{t, namespace, name, unit, value, dimensions}`) and in memory (`twin.metrics`), so a test can check what an
 * alarm would see (e.g. `sum("FilesFailed") >= 1`).
 */
import { createWriteStream, type WriteStream } from "node:fs";

export interface MetricPoint {
  readonly t: string;
  readonly namespace: string;
  readonly name: string;
  readonly unit: string;
  readonly value: number;
  readonly dimensions: Readonly<Record<string, string>>;
}

interface EmfDocument {
  readonly _aws?: {
    readonly Timestamp?: number;
    readonly CloudWatchMetrics?: readonly {
      readonly Namespace?: string;
      readonly Dimensions?: readonly (readonly string[])[];
      readonly Metrics?: readonly { readonly Name: string; readonly Unit?: string }[];
    }[];
  };
  readonly [field: string]: unknown;
}

/** The data points of one EMF document (a value may be a list: one point each). */
export function emfPoints(line: string): MetricPoint[] {
  let doc: EmfDocument;
  try {
    doc = JSON.parse(line) as EmfDocument;
  } catch {
    return [];
  }
  const t = new Date(doc._aws?.Timestamp ?? Date.now()).toISOString();
  const out: MetricPoint[] = [];
  for (const d of doc._aws?.CloudWatchMetrics ?? []) {
    const dimensions: Record<string, string> = {};
    for (const set of d.Dimensions ?? []) for (const k of set) dimensions[k] = String(doc[k] ?? "");
    for (const m of d.Metrics ?? []) {
      const raw = doc[m.Name];
      for (const v of Array.isArray(raw) ? raw : [raw]) {
        if (typeof v === "number") {
          out.push({ t, namespace: d.Namespace ?? "", name: m.Name, unit: m.Unit ?? "None", value: v, dimensions });
        }
      }
    }
  }
  return out;
}

export class MetricsRecorder {
  readonly points: MetricPoint[] = [];
  private readonly out: WriteStream;
  private closed = false;

  constructor(readonly file: string) {
    this.out = createWriteStream(file, { flags: "w" });
  }

  /** Takes one EMF document (what Powertools would print). */
  emf(line: string): void {
    for (const p of emfPoints(line)) {
      this.points.push(p);
      if (!this.closed) this.out.write(`${JSON.stringify(p)}\n`);
    }
  }

  /** The sum of a metric's values so far (what a Sum alarm over the whole time would see). */
  sum(name: string, namespace?: string): number {
    return this.points
      .filter((p) => p.name === name && (namespace === undefined || p.namespace === namespace))
      .reduce((a, p) => a + p.value, 0);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((r) => this.out.end(() => r()));
  }
}

/**
 * Points a Powertools Metrics instance at the recorder: enabled, and its EMF output captured instead of printed.
 * (Powertools keeps both as private fields; this is the twin's stand-in for Lambda capturing the function's stdout.)
 */
export function captureMetrics(metrics: unknown, recorder: MetricsRecorder): void {
  const m = metrics as { console: { log(line: string): void }; disabled: boolean };
  m.console = { log: (line: string) => recorder.emf(line) };
  m.disabled = false;
}
