import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseRunEnded, recordRunEnd } from "../../src/runs/completion.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { makeWorld } from "../helpers/world.js";

async function startBurst(w: ReturnType<typeof makeWorld>, keys: string[]) {
  const r = await handleUploadBatch(
    w.deps,
    w.config,
    keys.map((k) => w.upload(k).message),
  );
  if (!r.run?.started) throw new Error("no run started");
  return r.run;
}

describe("completion", () => {
  it("marks a succeeded run's files processed with their outputs and frees the slot", async () => {
    const w = makeWorld();
    const run = await startBurst(w, ["input/a.csv", "input/b.csv"]);
    await w.writeStats(run.runKey);
    w.glue.finish(run.glueRunId, "SUCCEEDED");

    const r = await recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });

    expect(r.applied).toBe(true);
    const uploads = [...w.ledger.uploads.values()];
    expect(uploads.map((u) => u.status)).toEqual(["processed", "processed"]);
    expect(uploads.find((u) => u.key === "input/a.csv")?.output).toMatch(/^s3:\/\/data-bucket\/processed\/a\/v=/);
    expect(w.ledger.runs.get(run.runKey)?.state).toBe("succeeded");
    expect(w.ledger.slot.holder).toBeNull();
  });

  it("changes nothing when the same state change is delivered twice", async () => {
    const w = makeWorld();
    const run = await startBurst(w, ["input/a.csv"]);
    await w.writeStats(run.runKey);
    w.glue.finish(run.glueRunId, "SUCCEEDED");
    await recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });
    const before = JSON.stringify([...w.ledger.uploads.values(), ...w.ledger.runs.values()]);

    const again = await recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });

    expect(again.applied).toBe(false);
    expect(JSON.stringify([...w.ledger.uploads.values(), ...w.ledger.runs.values()])).toBe(before);
    expect(w.glue.runs.size).toBe(1);
    expect(w.metrics.get("FilesProcessed")).toBe(1);
  });

  it("starts the next run with the uploads that arrived meanwhile", async () => {
    const w = makeWorld();
    const run = await startBurst(w, ["input/a.csv"]);
    await handleUploadBatch(w.deps, w.config, [w.upload("input/late.csv").message]);
    await w.writeStats(run.runKey);
    w.glue.finish(run.glueRunId, "SUCCEEDED");

    const r = await recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });

    expect(r.next?.started).toBe(true);
    const next = r.next?.started ? r.next : null;
    expect((await w.manifestOf(next?.runKey ?? "")).uploads.map((u) => u.key)).toEqual(["input/late.csv"]);
  });

  it("fails at once a file the job reported as unprocessable, with the job's reason", async () => {
    const w = makeWorld();
    const run = await startBurst(w, ["input/good.csv", "input/bad.csv"]);
    await w.writeStats(run.runKey, { "input/bad.csv": "input/bad.csv: missing required column(s): amount" });
    w.glue.finish(run.glueRunId, "SUCCEEDED");

    await recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });

    const bad = [...w.ledger.uploads.values()].find((u) => u.key === "input/bad.csv");
    expect(bad?.status).toBe("failed");
    expect(bad?.error).toBe("input/bad.csv: missing required column(s): amount");
    expect(w.metrics.get("FilesFailed")).toBe(1);
  });

  it("isolates a file that breaks its run by halving, then fails it after maxAttempts runs of its own", async () => {
    const w = makeWorld({ maxAttempts: 2 });
    const keys = ["input/p.csv", "input/a.csv", "input/b.csv", "input/c.csv"];
    let run = await startBurst(w, keys);
    const runSizes: number[] = [];
    for (let i = 0; i < 20; i++) {
      const manifest = await w.manifestOf(run.runKey);
      runSizes.push(manifest.uploads.length);
      const poisoned = manifest.uploads.some((u) => u.key === "input/p.csv");
      if (!poisoned) await w.writeStats(run.runKey);
      const state = poisoned ? "FAILED" : "SUCCEEDED";
      w.glue.finish(run.glueRunId, state);
      const r = await recordRunEnd(w.deps, w.config, {
        glueRunId: run.glueRunId,
        state,
        message: poisoned ? "executor lost" : null,
      });
      if (!r.next?.started) break;
      run = r.next;
    }

    const byKey = new Map([...w.ledger.uploads.values()].map((u) => [u.key, u]));
    expect(byKey.get("input/p.csv")?.status).toBe("failed");
    expect(byKey.get("input/p.csv")?.error).toMatch(/FAILED: executor lost \(after 2 attempts\)/);
    for (const k of ["input/a.csv", "input/b.csv", "input/c.csv"]) expect(byKey.get(k)?.status).toBe("processed");
    expect(runSizes).toEqual([4, 2, 2, 1, 1, 1]);
    expect(w.ledger.slot.holder).toBeNull();
  });

  it("finds its run through Glue's arguments when the start's answer was lost", async () => {
    const w = makeWorld();
    const run = await startBurst(w, ["input/a.csv"]);
    w.ledger.glueRuns.clear();
    await w.writeStats(run.runKey);
    w.glue.finish(run.glueRunId, "SUCCEEDED");

    const r = await recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });

    expect(r.runKey).toBe(run.runKey);
    expect(r.applied).toBe(true);
  });

  it("ignores a run the ledger does not know", async () => {
    const w = makeWorld();
    const r = await recordRunEnd(w.deps, w.config, { glueRunId: "jr_unknown", state: "SUCCEEDED", message: null });
    expect(r).toEqual({ runKey: null, applied: false, next: null });
  });
});

describe("parseRunEnded", () => {
  const golden = readFileSync(new URL("../events/glue-job-state-change.failed.json", import.meta.url), "utf8");
  it("reads AWS's Glue Job State Change", () => {
    expect(parseRunEnded(golden, "csv-ingest-job")).toEqual({
      kind: "run-ended",
      ended: {
        glueRunId: "jr_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        state: "FAILED",
        message: "JobName:csv-ingest-job and JobRunId:jr_0123 failed to execute with exception Task failed",
      },
    });
  });
  it("ignores other jobs and non-terminal states", () => {
    expect(parseRunEnded(golden, "other-job").kind).toBe("ignored");
    expect(parseRunEnded(golden.replace('"FAILED"', '"RUNNING"'), "csv-ingest-job").kind).toBe("ignored");
    expect(parseRunEnded("nope", "csv-ingest-job").kind).toBe("ignored");
  });
});
