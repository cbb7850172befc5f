/**
 * A run's Glue cost from Glue's own figures (runs/glue-cost.ts), and completion recording those figures on the run.
 * Expected dollars are worked out by hand from the published rates ($0.44 / $0.29 per DPU-hour, 1-minute minimum),
 * never from the code under test.
 */
import { describe, expect, it } from "vitest";
import { matchesPatch } from "../../src/ledger/memory.js";
import type { RunRecord } from "../../src/ledger/types.js";
import { recordRunEnd } from "../../src/runs/completion.js";
import { cleanUsage, type GlueUsage, glueRunCost } from "../../src/runs/glue-cost.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { FIGURES_FILL_AFTER_SECONDS, FIGURES_FILL_HOURS, sweep } from "../../src/runs/sweeper.js";
import { toUpload } from "../../src/upload/identity.js";
import { runRecord } from "../helpers/records.js";
import { makeWorld } from "../helpers/world.js";

const usage = (u: Partial<GlueUsage>): GlueUsage => ({
  workerType: "G.1X",
  numberOfWorkers: 2,
  executionClass: "STANDARD",
  executionSeconds: 100,
  dpuSeconds: null,
  ...u,
});

describe("glueRunCost", () => {
  it("prices workers × DPUs × seconds at the standard rate", () => {
    // 6 × G.1X for 312 s = 1,872 DPU-s = 0.52 DPU-h × $0.44 = $0.2288
    const c = glueRunCost(usage({ numberOfWorkers: 6, executionSeconds: 312 }));
    expect(c?.dpuSeconds).toBe(1872);
    expect(c?.dollars).toBeCloseTo(0.2288, 10);
    expect(c?.executionClass).toBe("STANDARD");
  });

  it("bills a short run its 1-minute minimum", () => {
    // 2 × G.1X for 10 s is billed 60 s: 120 DPU-s = $0.44 / 30 = $0.014666…
    const c = glueRunCost(usage({ executionSeconds: 10 }));
    expect(c?.dpuSeconds).toBe(120);
    expect(c?.dollars).toBeCloseTo(0.44 / 30, 12);
    expect(glueRunCost(usage({ executionSeconds: 60 }))?.dpuSeconds).toBe(120);
    expect(glueRunCost(usage({ executionSeconds: 61 }))?.dpuSeconds).toBe(122);
  });

  it("counts G.2X as 2 DPUs a worker", () => {
    // 3 × G.2X for 200 s = 1,200 DPU-s = $0.44 / 3
    expect(glueRunCost(usage({ workerType: "G.2X", numberOfWorkers: 3, executionSeconds: 200 }))?.dollars).toBeCloseTo(
      0.44 / 3,
      12,
    );
  });

  it("prices Flex at its own rate and takes Glue's DPUSeconds when it reports them, never below the minimum", () => {
    // Glue's 3,744 DPU-s at $0.29 per DPU-h = $0.3016
    const flex = glueRunCost(usage({ executionClass: "FLEX", numberOfWorkers: 6, dpuSeconds: 3744 }));
    expect(flex?.dpuSeconds).toBe(3744);
    expect(flex?.dollars).toBeCloseTo(0.3016, 10);
    expect(flex?.executionClass).toBe("FLEX");
    // 2 × G.1X reported at 100 DPU-s: the minimum is 2 × 60 = 120
    expect(glueRunCost(usage({ executionClass: "FLEX", dpuSeconds: 100 }))?.dpuSeconds).toBe(120);
  });

  it("prices a run that consumed nothing (ExecutionTime 0: it never got its workers) at 0, not the minimum", () => {
    expect(glueRunCost(usage({ executionSeconds: 0 }))).toEqual({
      dpuSeconds: 0,
      dollars: 0,
      executionClass: "STANDARD",
    });
    expect(glueRunCost(usage({ executionClass: "FLEX", dpuSeconds: 0 }))?.dollars).toBe(0);
  });

  it("bills a standard run for all its workers: a DPUSeconds figure counts only for Flex (auto scaling is off)", () => {
    // 2 × G.1X × 312 s = 624 DPU-s, whatever smaller executor figure Glue reports
    expect(glueRunCost(usage({ executionSeconds: 312, dpuSeconds: 50 }))?.dpuSeconds).toBe(624);
  });

  it("knows the bigger G types' DPUs and no object property as a worker type", () => {
    // 2 × G.4X × 100 s = 800 DPU-s; 2 × G.025X × 100 s = 50 DPU-s
    expect(glueRunCost(usage({ workerType: "G.4X" }))?.dpuSeconds).toBe(800);
    expect(glueRunCost(usage({ workerType: "G.025X" }))?.dpuSeconds).toBe(50);
    // 2 workers × 100 s × 8 / 12 / 16 DPUs
    expect(glueRunCost(usage({ workerType: "G.8X" }))?.dpuSeconds).toBe(1600);
    expect(glueRunCost(usage({ workerType: "G.12X" }))?.dpuSeconds).toBe(2400);
    expect(glueRunCost(usage({ workerType: "G.16X" }))?.dpuSeconds).toBe(3200);
    expect(glueRunCost(usage({ workerType: "" }))).toBeNull();
    for (const odd of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      expect(glueRunCost(usage({ workerType: odd })), odd).toBeNull();
    }
  });

  it("takes an absent execution class as the standard one", () => {
    expect(glueRunCost(usage({ executionClass: null }))?.dollars).toBeCloseTo((200 / 3600) * 0.44, 12);
  });

  it("shows no cost when Glue's figures do not allow one", () => {
    for (const bad of [
      usage({ workerType: "R.2X" }), // another rate: no price recorded
      usage({ workerType: "Standard" }),
      usage({ workerType: null }),
      usage({ numberOfWorkers: null }),
      usage({ numberOfWorkers: 0 }),
      usage({ numberOfWorkers: -2 }),
      usage({ executionSeconds: null }),
      usage({ executionSeconds: Number.NaN }),
      usage({ executionSeconds: -5 }),
      usage({ executionClass: "SPOT" }),
    ]) {
      expect(glueRunCost(bad), JSON.stringify(bad)).toBeNull();
    }
  });
});

describe("cleanUsage: Glue's answer as it may be stored (DynamoDB refuses NaN, Infinity, numbers past 2^53)", () => {
  it("keeps sane figures and turns every odd one into null", () => {
    expect(cleanUsage(usage({ numberOfWorkers: 6 }))).toEqual(usage({ numberOfWorkers: 6 }));
    expect(
      cleanUsage({
        workerType: "G.1X\u001b[31m",
        numberOfWorkers: Number.POSITIVE_INFINITY,
        executionClass: "x".repeat(33),
        executionSeconds: 1e300,
        dpuSeconds: Number.NaN,
      }),
    ).toEqual({
      workerType: null,
      numberOfWorkers: null,
      executionClass: null,
      executionSeconds: null,
      dpuSeconds: null,
    });
    expect(cleanUsage({ numberOfWorkers: "6", executionSeconds: -1, workerType: 7 })).toEqual({
      workerType: null,
      numberOfWorkers: null,
      executionClass: null,
      executionSeconds: null,
      dpuSeconds: null,
    });
    // 2^53 − 1 is the largest integer DynamoDB's client takes: kept; anything past it is not
    expect(cleanUsage({ executionSeconds: Number.MAX_SAFE_INTEGER })?.executionSeconds).toBe(Number.MAX_SAFE_INTEGER);
    expect(cleanUsage({ executionSeconds: Number.MAX_SAFE_INTEGER + 2 })?.executionSeconds).toBeNull();
    expect(cleanUsage(null)).toBeNull();
    expect(cleanUsage(undefined)).toBeNull();
  });
});

/** One upload, its run started, its stats written, and Glue's run ended `seconds` later (no event delivered yet). */
async function endedRun(seconds: number) {
  const w = makeWorld();
  const r = await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
  if (!r.run?.started) throw new Error("no run started");
  await w.writeStats(r.run.runKey);
  w.clock.advance(seconds * 1000);
  w.glue.finish(r.run.glueRunId, "SUCCEEDED");
  return { w, run: r.run };
}

describe("completion records Glue's figures on the run", () => {
  it("asks Glue (GetJobRun) for the capacity and time of a run whose state change it records", async () => {
    const { w, run } = await endedRun(312);
    const asked = w.glue.capacities.get(run.glueRunId);

    await recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });

    expect(w.ledger.runs.get(run.runKey)?.glue).toEqual({
      workerType: asked?.workerType,
      numberOfWorkers: asked?.numberOfWorkers,
      executionClass: asked?.executionClass,
      executionSeconds: 312,
      dpuSeconds: null,
    });
    expect(w.ledger.runs.get(run.runKey)?.state).toBe("succeeded");
    // Billed once, as a metric to graph: workers × DPUs × 312 s.
    const dpus = (asked?.numberOfWorkers ?? 0) * (asked?.workerType === "G.2X" ? 2 : 1);
    expect(w.metrics.get("GlueDpuSeconds")).toBe(dpus * 312);
    await recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });
    expect(w.metrics.get("GlueDpuSeconds")).toBe(dpus * 312);
  });

  it("settles the run all the same when Glue cannot be asked, recording no figures", async () => {
    const { w, run } = await endedRun(90);
    w.glue.getRun = async () => {
      throw Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
    };

    const r = await recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });

    expect(r.applied).toBe(true);
    expect(w.ledger.runs.get(run.runKey)?.state).toBe("succeeded");
    expect(w.ledger.runs.get(run.runKey)?.glue).toBeNull();
    expect(w.metrics.get("GlueDpuSeconds")).toBe(0);
    expect([...w.ledger.uploads.values()].map((u) => u.status)).toEqual(["processed"]);
    expect(w.log.lines.some((l) => l.level === "warn" && /could not read the run's capacity/.test(l.message))).toBe(
      true,
    );
  });

  it("records no figures from an answer that still shows the run going (a read behind the state change)", async () => {
    const { w, run } = await endedRun(90);
    const ended = await w.glue.getRun(run.glueRunId);
    w.glue.getRun = async () => (ended ? { ...ended, state: "RUNNING" } : null);

    await recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });

    expect(w.ledger.runs.get(run.runKey)?.state).toBe("succeeded");
    expect(w.ledger.runs.get(run.runKey)?.glue).toBeNull();
  });

  it("stores odd figures from Glue cleaned, and closes the run", async () => {
    const { w, run } = await endedRun(90);
    const ended = await w.glue.getRun(run.glueRunId);
    w.glue.getRun = async () =>
      ended
        ? { ...ended, usage: { ...usage({}), executionSeconds: Number.POSITIVE_INFINITY, dpuSeconds: 1e300 } }
        : null;

    await recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });

    expect(w.ledger.runs.get(run.runKey)).toMatchObject({
      state: "succeeded",
      glue: usage({ executionSeconds: null, dpuSeconds: null }),
    });
  });

  it("settles the uploads before Glue's answer comes: only the run's close waits for it", async () => {
    const { w, run } = await endedRun(90);
    const ended = await w.glue.getRun(run.glueRunId);
    let answer: (v: typeof ended) => void = () => undefined;
    w.glue.getRun = () => new Promise((resolve) => (answer = resolve));

    const closing = recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });
    for (let i = 0; i < 100 && [...w.ledger.uploads.values()][0]?.status !== "processed"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 0));
    }

    expect([...w.ledger.uploads.values()].map((u) => u.status)).toEqual(["processed"]);
    expect(w.ledger.runs.get(run.runKey)?.state).toBe("running");
    answer(ended);
    expect((await closing).applied).toBe(true);
    expect(w.ledger.runs.get(run.runKey)?.glue?.executionSeconds).toBe(90);
  });

  it("counts the GlueDpuSeconds metric once when a second settler read the run before the first closed it", async () => {
    const { w, run } = await endedRun(312);
    const asked = w.glue.capacities.get(run.glueRunId);
    const running = w.ledger.runs.get(run.runKey);
    const ended = { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null };
    await recordRunEnd(w.deps, w.config, ended);
    const get = w.ledger.getRun.bind(w.ledger);
    w.ledger.getRun = async (key) => (key === run.runKey ? (running ?? null) : get(key));

    const late = await recordRunEnd(w.deps, w.config, ended);

    expect(late.applied).toBe(false);
    expect(w.metrics.get("GlueDpuSeconds")).toBe((asked?.numberOfWorkers ?? 0) * 312);
  });

  it("the sweeper's recorded lost end carries the figures its own GetJobRun read, with no second read", async () => {
    const { w, run } = await endedRun(312);
    let reads = 0;
    const getRun = w.glue.getRun.bind(w.glue);
    w.glue.getRun = async (id: string) => {
      reads++;
      return getRun(id);
    };

    const report = await sweep(w.deps, w.config);

    expect(report.repairs).toContain("recorded-lost-end");
    expect(w.ledger.runs.get(run.runKey)?.glue?.executionSeconds).toBe(312);
    expect(reads).toBe(1);
  });

  it("uses the figures its caller has just read (the sweeper) without asking again", async () => {
    const { w, run } = await endedRun(90);
    let asked = 0;
    const getRun = w.glue.getRun.bind(w.glue);
    w.glue.getRun = async (id: string) => {
      asked++;
      return getRun(id);
    };
    const figures: GlueUsage = usage({ numberOfWorkers: 12, executionSeconds: 400 });

    await recordRunEnd(w.deps, w.config, {
      glueRunId: run.glueRunId,
      state: "SUCCEEDED",
      message: null,
      usage: figures,
    });

    expect(w.ledger.runs.get(run.runKey)?.glue).toEqual(figures);
    expect(asked).toBe(0);
  });
});

describe("a settle's read-back (matchesPatch)", () => {
  it("matches Glue's figures whatever order DynamoDB gives a map's keys back in, and only the same figures", () => {
    const written = usage({ numberOfWorkers: 6 });
    const readBack = {
      dpuSeconds: null,
      executionSeconds: 100,
      executionClass: "STANDARD",
      numberOfWorkers: 6,
      workerType: "G.1X",
    } as GlueUsage;
    const run = { runKey: "r1", state: "succeeded", glue: readBack } as unknown as RunRecord;
    expect(matchesPatch(run, { state: "succeeded", glue: written })).toBe(true);
    expect(matchesPatch(run, { glue: usage({ numberOfWorkers: 7 }) })).toBe(false);
    expect(matchesPatch(run, { glue: null })).toBe(false);
  });
});

describe("figures a close could not read are filled in later", () => {
  /**
   * A run closed while GetJobRun was throttled: its `glue` is null. Returns the world with Glue answering again, the
   * clock `after` seconds past the close (by default past FIGURES_FILL_AFTER_SECONDS, so a sweep may fill it).
   */
  async function closedWithoutFigures(seconds = 200, after = FIGURES_FILL_AFTER_SECONDS) {
    const { w, run } = await endedRun(seconds);
    const getRun = w.glue.getRun.bind(w.glue);
    let reads = 0;
    let throttled = true;
    w.glue.getRun = async (id: string) => {
      reads++;
      if (throttled) throw Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
      return getRun(id);
    };
    await recordRunEnd(w.deps, w.config, { glueRunId: run.glueRunId, state: "SUCCEEDED", message: null });
    expect(w.ledger.runs.get(run.runKey)?.glue).toBeNull();
    throttled = false;
    reads = 0;
    w.clock.advance(after * 1000);
    return { w, run, reads: () => reads, throttle: (on: boolean) => (throttled = on) };
  }

  it("a sweep 5 minutes after the close reads them from Glue and records them on the run, once", async () => {
    const { w, run, reads } = await closedWithoutFigures(200);
    const asked = w.glue.capacities.get(run.glueRunId);

    const report = await sweep(w.deps, w.config);

    expect(report.figuresFilled).toBe(1);
    expect(report.repairs).toEqual([]);
    expect(w.ledger.runs.get(run.runKey)?.glue).toEqual({
      workerType: asked?.workerType,
      numberOfWorkers: asked?.numberOfWorkers,
      executionClass: asked?.executionClass,
      executionSeconds: 200,
      dpuSeconds: null,
    });
    expect(w.ledger.runs.get(run.runKey)?.state).toBe("succeeded");
    expect(reads()).toBe(1);
    // Not a close: the metric counts runs as they close, and this one closed before.
    expect(w.metrics.get("GlueDpuSeconds")).toBe(0);

    const again = await sweep(w.deps, w.config);
    expect(again.figuresFilled).toBe(0);
    expect(reads()).toBe(1);
  });

  it("leaves a run closed less than 5 minutes ago alone: a retry of its close may still be on its way", async () => {
    const { w, run, reads } = await closedWithoutFigures(200, FIGURES_FILL_AFTER_SECONDS - 1);

    expect((await sweep(w.deps, w.config)).figuresFilled).toBe(0);
    expect(reads()).toBe(0);

    w.clock.advance(1_000);
    expect((await sweep(w.deps, w.config)).figuresFilled).toBe(1);
    expect(w.ledger.runs.get(run.runKey)?.glue?.executionSeconds).toBe(200);
  });

  it("a close whose answer was lost still reads its own write back as applied when a sweep ran meanwhile", async () => {
    const { w, run } = await endedRun(200);
    const getRun = w.glue.getRun.bind(w.glue);
    w.glue.getRun = async () => {
      throw Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
    };
    // The close applies, its answer is lost; before the SDK's retry lands, a sweep runs with Glue answering again.
    const update = w.ledger.updateRun.bind(w.ledger);
    let retried: boolean | null = null;
    w.ledger.updateRun = async (key, from, patch) => {
      const applied = await update(key, from, patch);
      if (patch.closedBy !== undefined && retried === null) {
        w.glue.getRun = getRun;
        w.clock.advance(30_000);
        await sweep(w.deps, w.config);
        retried = await update(key, from, patch);
        return retried;
      }
      return applied;
    };

    const result = await recordRunEnd(w.deps, w.config, {
      glueRunId: run.glueRunId,
      state: "SUCCEEDED",
      message: null,
    });

    expect(retried).toBe(true);
    expect(result.applied).toBe(true);
    expect(w.metrics.get("FilesProcessed")).toBe(1);
  });

  it("keeps asking while Glue cannot answer, without failing the sweep", async () => {
    const { w, run, reads, throttle } = await closedWithoutFigures();
    throttle(true);

    const report = await sweep(w.deps, w.config);

    expect(report.figuresFilled).toBe(0);
    expect(reads()).toBe(1);
    expect(w.ledger.runs.get(run.runKey)?.glue).toBeNull();
    throttle(false);
    expect((await sweep(w.deps, w.config)).figuresFilled).toBe(1);
    expect(w.ledger.runs.get(run.runKey)?.glue?.executionSeconds).toBe(200);
  });

  it("does not fail the sweep when the ledger refuses the write", async () => {
    const { w, run } = await closedWithoutFigures();
    w.ledger.fillRunGlue = async () => {
      throw Object.assign(new Error("Throughput exceeded"), { name: "ProvisionedThroughputExceededException" });
    };

    const report = await sweep(w.deps, w.config);

    expect(report.figuresFilled).toBe(0);
    expect(w.ledger.runs.get(run.runKey)?.glue).toBeNull();
    expect(w.log.lines.some((l) => l.level === "warn" && /could not record a run's Glue figures/.test(l.message))).toBe(
      true,
    );
  });

  it("asks up to a day after the run ended, not a second later", async () => {
    const day = FIGURES_FILL_HOURS * 3600;
    const { w, reads, throttle } = await closedWithoutFigures(200, day);
    throttle(true);
    await sweep(w.deps, w.config);
    expect(reads()).toBe(1);

    w.clock.advance(1_000);
    await sweep(w.deps, w.config);
    expect(reads()).toBe(1);
  });

  it("leaves alone a run closed before figures were recorded (no glue at all) and one that never reached Glue", async () => {
    const w = makeWorld();
    const id = await w.glue.startRun({ "--run_key": "k" });
    w.glue.finish(id, "SUCCEEDED");
    const ended = "2026-04-01T10:00:00.000Z";
    await w.ledger.createRun(
      runRecord("20260401T100000Z-00000001", ended, { state: "succeeded", glueRunId: id, endedAt: ended }),
    );
    await w.ledger.createRun(
      runRecord("20260401T100000Z-00000002", ended, { state: "failed", endedAt: ended, glue: null }),
    );
    w.clock.advance(3_600_000);
    let reads = 0;
    w.glue.getRun = async () => {
      reads++;
      return null;
    };

    expect((await sweep(w.deps, w.config)).figuresFilled).toBe(0);
    expect(reads).toBe(0);
  });

  it("asks for at most 10 runs a sweep, and a different 10 the next sweep, so runs Glue never answers for cannot keep the rest out", async () => {
    const w = makeWorld();
    const ended = "2026-04-01T10:10:00.000Z";
    w.clock.advance(3_600_000); // 11:00, 50 minutes after the runs ended
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const id = await w.glue.startRun({ "--run_key": `k${i}` });
      w.glue.finish(id, "SUCCEEDED");
      ids.push(id);
      const key = `20260401T10${String(i).padStart(2, "0")}00Z-0000000${i % 10}`;
      await w.ledger.createRun(
        runRecord(key, "2026-04-01T10:00:00.000Z", { state: "succeeded", glueRunId: id, endedAt: ended, glue: null }),
      );
    }
    // Glue never has figures for the 10 newest runs (e.g. the job was replaced): only the 2 oldest can be filled.
    const answering = new Set(ids.slice(0, 2));
    const asked: string[] = [];
    const getRun = w.glue.getRun.bind(w.glue);
    w.glue.getRun = async (id: string) => {
      asked.push(id);
      return answering.has(id) ? getRun(id) : null;
    };

    const first = await sweep(w.deps, w.config);
    expect(asked).toHaveLength(10);
    w.clock.advance(w.config.runs.sweepIntervalMinutes * 60_000);
    const second = await sweep(w.deps, w.config);

    expect(first.figuresFilled + second.figuresFilled).toBe(2);
    expect(asked).toHaveLength(20);
    expect(new Set(asked)).toEqual(new Set(ids));
    for (const id of answering)
      expect(
        w.ledger.runs.get([...w.ledger.runs.values()].find((r) => r.glueRunId === id)?.runKey ?? "")?.glue,
      ).not.toBeNull();
  });

  it("reads Glue for figures only after the sweep has started the next run", async () => {
    const { w, run } = await closedWithoutFigures();
    // input/b.csv is pending with no run active (its batch could not start one): the sweeper starts it.
    const { version } = w.upload("input/b.csv");
    await w.ledger.recordUpload(toUpload(version), w.clock.now().toISOString());
    const calls: string[] = [];
    const getRun = w.glue.getRun.bind(w.glue);
    const startRun = w.glue.startRun.bind(w.glue);
    w.glue.getRun = async (id: string) => {
      calls.push("GetJobRun");
      return getRun(id);
    };
    w.glue.startRun = async (...args: Parameters<typeof startRun>) => {
      calls.push("StartJobRun");
      return startRun(...args);
    };

    const report = await sweep(w.deps, w.config);

    expect(report.next?.started).toBe(true);
    expect(report.figuresFilled).toBe(1);
    expect(calls).toEqual(["StartJobRun", "GetJobRun"]);
    expect(w.ledger.runs.get(run.runKey)?.glue).not.toBeNull();
  });
});

describe("a state change for a run the ledger has not linked (the start's answer was lost)", () => {
  it("finds the run key and the figures in one GetJobRun", async () => {
    const { w, run } = await endedRun(150);
    w.ledger.runKeyOfGlueRun = async () => null;
    let reads = 0;
    const getRun = w.glue.getRun.bind(w.glue);
    w.glue.getRun = async (id: string) => {
      reads++;
      return getRun(id);
    };

    const result = await recordRunEnd(w.deps, w.config, {
      glueRunId: run.glueRunId,
      state: "SUCCEEDED",
      message: null,
    });

    expect(result.runKey).toBe(run.runKey);
    expect(w.ledger.runs.get(run.runKey)?.glue?.executionSeconds).toBe(150);
    expect(reads).toBe(1);
  });

  it("asks again for the figures when that answer still showed the run going", async () => {
    const w = makeWorld();
    const r = await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    if (!r.run?.started) throw new Error("no run started");
    await w.writeStats(r.run.runKey);
    w.clock.advance(150_000);
    const going = await w.glue.getRun(r.run.glueRunId);
    w.glue.finish(r.run.glueRunId, "SUCCEEDED");
    w.ledger.runKeyOfGlueRun = async () => null;
    const answers = [going];
    const getRun = w.glue.getRun.bind(w.glue);
    w.glue.getRun = async (id: string) => (answers.length > 0 ? (answers.shift() ?? null) : getRun(id));

    await recordRunEnd(w.deps, w.config, { glueRunId: r.run.glueRunId, state: "SUCCEEDED", message: null });

    expect(w.ledger.runs.get(r.run.runKey)?.glue?.executionSeconds).toBe(150);
  });
});
