/** The handlers' metrics in the twin: Powertools' EMF output captured and recorded as data points. */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { metrics } from "@ingest/functions";
import { describe, expect, it } from "vitest";
import { captureMetrics, emfPoints, MetricsRecorder } from "../../src/metrics.js";

describe("metrics", () => {
  it("records what the handlers' Powertools Metrics instance publishes", async () => {
    const recorder = new MetricsRecorder(join(mkdtempSync(join(tmpdir(), "twin-metrics-")), "metrics.jsonl"));
    captureMetrics(metrics, recorder);
    metrics.addMetric("FilesFailed", "Count" as never, 2);
    metrics.addMetric("RunsStarted", "Count" as never, 1);
    metrics.publishStoredMetrics();
    metrics.addMetric("FilesFailed", "Count" as never, 1);
    metrics.publishStoredMetrics();
    await recorder.close();
    expect(recorder.sum("FilesFailed")).toBe(3);
    expect(recorder.sum("RunsStarted", "CsvIngest")).toBe(1);
    const lines = readFileSync(recorder.file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({
      namespace: "CsvIngest",
      name: "FilesFailed",
      unit: "Count",
      value: 2,
      dimensions: { service: "csv-ingest" },
    });
  });

  it("reads every value of a multi-value EMF metric and ignores what is not EMF", () => {
    const doc = JSON.stringify({
      _aws: {
        Timestamp: 0,
        CloudWatchMetrics: [{ Namespace: "N", Dimensions: [["service"]], Metrics: [{ Name: "X", Unit: "Count" }] }],
      },
      service: "s",
      X: [1, 2],
    });
    expect(emfPoints(doc).map((p) => p.value)).toEqual([1, 2]);
    expect(emfPoints("not json")).toEqual([]);
  });
});
