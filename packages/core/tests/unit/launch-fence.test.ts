/**
 * The launch fence (runs/start.ts): a start marks the slot launched right before StartJobRun. A start that died before
 * it is revoked by whoever finds the slot stale (every starter, not only the sweeper), and a revoked starter that wakes
 * up never calls Glue. A launched start is only repaired by the sweeper, which asks Glue; an undo closes the run
 * before it touches the uploads, and a Glue run whose start was given up is stopped.
 */
import { describe, expect, it } from "vitest";
import type { Deps } from "../../src/ledger/ports.js";
import { recordRunEnd } from "../../src/runs/completion.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { revokeStaleStart } from "../../src/runs/start.js";
import { sweep } from "../../src/runs/sweeper.js";
import { crashingAfter } from "../../src/testing/fakes.js";
import { runRecord } from "../helpers/records.js";
import { makeWorld } from "../helpers/world.js";

/** `target` with `method`'s n-th call (1-based) held before (`when: "before"`) or after it applies until `open()`. */
function gated<T extends object>(target: T, method: string, nth: number, when: "before" | "after") {
  let calls = 0;
  let open: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let reached: () => void = () => {};
  const arrived = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const proxy = new Proxy(target, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop);
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        if (String(prop) !== method || ++calls !== nth) return value.apply(obj, args);
        reached();
        if (when === "before") {
          await gate;
          return value.apply(obj, args);
        }
        const result: unknown = await value.apply(obj, args);
        await gate;
        return result;
      };
    },
  });
  return { proxy, open, arrived };
}

/** `target` whose first call matching `match` runs `action` first (another actor's move, landing just before it). */
function racedBefore<T extends object>(
  target: T,
  match: (method: string, args: readonly unknown[]) => boolean,
  action: () => Promise<void>,
) {
  let fired = false;
  const proxy = new Proxy(target, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop);
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        if (!fired && match(String(prop), args)) {
          fired = true;
          await action();
        }
        return value.apply(obj, args);
      };
    },
  });
  return { proxy, fired: () => fired };
}

const START_TIMEOUT_MS = 180_000;
/** An unlaunched start is revoked once held longer than this (RunSettings.revokeUnlaunchedAfterSeconds). */
const REVOKE_AFTER_MS = 75_000;

/** Which runs' manifests list each key. */
async function runsOfKeys(w: ReturnType<typeof makeWorld>): Promise<Map<string, string[]>> {
  const byKey = new Map<string, string[]>();
  for (const run of w.ledger.runs.values()) {
    if (run.glueRunId === null) continue;
    for (const u of (await w.manifestOf(run.runKey)).uploads)
      byKey.set(u.key, [...(byKey.get(u.key) ?? []), run.runKey]);
  }
  return byKey;
}

describe("a start that died before its launch fence", () => {
  it("is revoked by the next batch once held longer than 75 s; its uploads run with the batch's", async () => {
    const w = makeWorld();
    // The batcher dies right after its first claim (the write lands, the process is gone).
    const dead = crashingAfter(w.ledger, (method) => method === "claimUpload");
    void handleUploadBatch({ ...w.deps, ledger: dead.proxy }, w.config, [
      w.upload("input/a.csv").message,
      w.upload("input/b.csv").message,
    ]);
    await dead.died;
    const [crashed] = [...w.ledger.runs.values()];
    expect(crashed?.state).toBe("starting");
    expect(w.ledger.slot).toMatchObject({ holder: crashed?.runKey, launched: false });

    // Not yet past the batcher's and the recorder's timeouts + 15 s: left alone (the starter may be alive).
    w.clock.advance(REVOKE_AFTER_MS - 1_000);
    const early = await handleUploadBatch(w.deps, w.config, [w.upload("input/c.csv").message]);
    expect(early.run).toEqual({ started: false, reason: "slot-held" });
    expect(w.glue.runs.size).toBe(0);

    w.clock.advance(2_000);
    const late = await handleUploadBatch(w.deps, w.config, [w.upload("input/d.csv").message]);

    expect(late.run).toMatchObject({ started: true, files: 4 });
    expect(w.ledger.runs.get(crashed?.runKey ?? "")?.state).toBe("start_failed");
    const started = late.run?.started ? late.run.runKey : "";
    const keys = (await w.manifestOf(started)).uploads.map((u) => u.key).sort();
    expect(keys).toEqual(["input/a.csv", "input/b.csv", "input/c.csv", "input/d.csv"]);
    // a start that never reached Glue charges no attempt
    for (const u of w.ledger.uploads.values()) expect(u.attempts).toBe(0);
    expect(w.glue.runs.size).toBe(1);
  });

  it("a revoked starter that wakes up never calls Glue and gives back what it claimed after the repair", async () => {
    const w = makeWorld();
    // Starter 1 is paused after its second claim applied (a GC pause, a laptop lid closed): alive, just late.
    const slow = gated(w.ledger, "claimUpload", 2, "after");
    const first = handleUploadBatch({ ...w.deps, ledger: slow.proxy }, w.config, [
      w.upload("input/a.csv").message,
      w.upload("input/b.csv").message,
    ]);
    await slow.arrived;
    const [paused] = [...w.ledger.runs.values()];

    w.clock.advance(START_TIMEOUT_MS + 1_000);
    const repairer = await handleUploadBatch(w.deps, w.config, [w.upload("input/c.csv").message]);
    const second = repairer.run?.started ? repairer.run : null;
    expect(second).not.toBeNull();
    // Its Glue run ends (not yet recorded, so it still holds the slot): Glue would now accept another start.
    w.glue.finish(second?.glueRunId ?? "", "SUCCEEDED");

    slow.open();
    const woke = await first;

    expect(woke.run).toEqual({ started: false, reason: "slot-held" });
    expect(w.glue.runs.size).toBe(1);
    expect(w.ledger.runs.get(paused?.runKey ?? "")?.state).toBe("start_failed");
    expect(w.ledger.runs.get(paused?.runKey ?? "")?.glueRunId).toBeNull();
    // every upload is in exactly one Glue run, and none is left running in the revoked start
    expect(await runsOfKeys(w)).toEqual(
      new Map(["input/a.csv", "input/b.csv", "input/c.csv"].map((k) => [k, [second?.runKey]])),
    );
    for (const u of w.ledger.uploads.values()) expect(u.runKey).toBe(second?.runKey);
  });

  it("a launched start is not revoked by a batch: only the sweeper repairs it, asking Glue first", async () => {
    const w = makeWorld();
    const paused = gated(w.glue, "startRun", 1, "before");
    const first = handleUploadBatch({ ...w.deps, glue: paused.proxy }, w.config, [w.upload("input/a.csv").message]);
    await paused.arrived;
    const [launched] = [...w.ledger.runs.values()];
    expect(w.ledger.slot).toMatchObject({ holder: launched?.runKey, launched: true });

    w.clock.advance(START_TIMEOUT_MS + 1_000);
    const batch = await handleUploadBatch(w.deps, w.config, [w.upload("input/b.csv").message]);

    expect(batch.run).toEqual({ started: false, reason: "slot-held" });
    expect(w.ledger.slot.holder).toBe(launched?.runKey);
    expect(w.ledger.runs.get(launched?.runKey ?? "")?.state).toBe("starting");
    paused.open();
    expect((await first).run).toMatchObject({ started: true, runKey: launched?.runKey, files: 1 });
    expect(w.ledger.slot.wakeup).toBe(true); // b's batch asked the run's end to look for it
  });
});

describe("the sweeper gives up a launched start whose Glue answer never came", () => {
  it("when the start's StartJobRun lands after all, the starter stops that Glue run", async () => {
    const w = makeWorld();
    const paused = gated(w.glue, "startRun", 1, "before");
    const first = handleUploadBatch({ ...w.deps, glue: paused.proxy }, w.config, [w.upload("input/a.csv").message]);
    await paused.arrived;
    const [given] = [...w.ledger.runs.values()];

    w.clock.advance(START_TIMEOUT_MS + 1_000);
    const report = await sweep(w.deps, w.config);
    expect(report.repairs).toEqual(["undid-failed-start", "started-pending"]);
    const next = report.next?.started ? report.next : null;
    w.glue.finish(next?.glueRunId ?? "", "SUCCEEDED");

    paused.open(); // the paused starter's StartJobRun now reaches Glue
    const woke = await first;

    const late = [...w.glue.runs.values()].find((r) => r.arguments["--run_key"] === given?.runKey);
    expect(late).toBeDefined();
    expect(w.glue.stopped).toEqual([late?.id]);
    expect(late && w.glue.runs.get(late.id)?.state).toBe("STOPPED");
    expect(woke.run).toMatchObject({ started: false });
    expect(w.ledger.runs.get(given?.runKey ?? "")?.state).toBe("start_failed");
    expect((await w.manifestOf(next?.runKey ?? "")).uploads.map((u) => u.key)).toEqual(["input/a.csv"]);
  });

  it("closes the run before it touches the uploads: a start recorded as running meanwhile keeps them", async () => {
    const w = makeWorld();
    const paused = gated(w.glue, "startRun", 1, "after"); // Glue has the run; its answer is late
    const first = handleUploadBatch({ ...w.deps, glue: paused.proxy }, w.config, [w.upload("input/a.csv").message]);
    await paused.arrived;
    const [run] = [...w.ledger.runs.values()];

    w.clock.advance(START_TIMEOUT_MS + 1_000);
    // The sweeper's listing of Glue runs lags (it does not show the new run), and the starter's answer arrives just
    // as the sweeper begins its undo.
    const lagging = new Proxy(w.glue, {
      get(obj, prop) {
        if (prop === "recentRuns") return async () => [];
        const v: unknown = Reflect.get(obj, prop);
        return typeof v === "function" ? v.bind(obj) : v;
      },
    });
    const racing = racedBefore(
      w.ledger,
      (method) => method === "updateRun" || method === "settleUpload" || method === "getUpload",
      async () => {
        paused.open();
        await first;
      },
    );
    const deps: Deps = { ...w.deps, ledger: racing.proxy, glue: lagging };
    const report = await sweep(deps, w.config);

    expect(racing.fired()).toBe(true);
    expect((await first).run).toMatchObject({ started: true, runKey: run?.runKey });
    expect(report.repairs).not.toContain("undid-failed-start");
    expect(w.ledger.runs.get(run?.runKey ?? "")?.state).toBe("running");
    const a = [...w.ledger.uploads.values()][0];
    expect(a).toMatchObject({ status: "running", runKey: run?.runKey });
    expect(w.ledger.slot.holder).toBe(run?.runKey);
    expect(w.glue.stopped).toEqual([]);
  });
});

describe("found by review (1 Dec): repairs that met a start passing its fence, or a start left open without the slot", () => {
  it("a sweeper whose revocation meets the holder's fence does not ask Glue this pass: the start is not given up", async () => {
    const w = makeWorld();
    // S is held just before its fence, then just before StartJobRun.
    const atFence = gated(w.ledger, "markLaunched", 1, "before");
    const atGlue = gated(w.glue, "startRun", 1, "before");
    const s = handleUploadBatch({ ...w.deps, ledger: atFence.proxy, glue: atGlue.proxy }, w.config, [
      w.upload("input/a.csv").message,
    ]);
    await atFence.arrived;
    const [run] = [...w.ledger.runs.values()];
    w.clock.advance(START_TIMEOUT_MS + 1_000);
    // The sweeper read the slot unlaunched; S passes its fence just before the sweeper's revocation.
    const sweeperLedger = racedBefore(
      w.ledger,
      (method, args) =>
        method === "releaseSlot" && (args[1] as { unlessLaunched?: boolean } | undefined)?.unlessLaunched === true,
      async () => {
        atFence.open();
        await atGlue.arrived;
      },
    );
    const report = await sweep({ ...w.deps, ledger: sweeperLedger.proxy }, w.config);

    expect(sweeperLedger.fired()).toBe(true);
    expect(report.repairs).toEqual([]);
    expect(w.ledger.runs.get(run?.runKey ?? "")?.state).toBe("starting");
    atGlue.open();
    expect((await s).run).toMatchObject({ started: true, runKey: run?.runKey });
    expect(w.glue.runs.size).toBe(1);
    expect(w.glue.stopped).toEqual([]);
  });

  it("a launched start is judged stale from its fence, not from when it took the slot", async () => {
    const w = makeWorld();
    const claimed = gated(w.ledger, "claimUpload", 1, "after");
    const atGlue = gated(w.glue, "startRun", 1, "before");
    void handleUploadBatch({ ...w.deps, ledger: claimed.proxy, glue: atGlue.proxy }, w.config, [
      w.upload("input/a.csv").message,
    ]);
    await claimed.arrived;
    w.clock.advance(START_TIMEOUT_MS); // slow before its fence (took the slot 180 s ago); nobody looked meanwhile
    claimed.open();
    await atGlue.arrived; // launched now
    w.clock.advance(60_000); // 240 s after the take, 60 s after the fence
    expect((await sweep(w.deps, w.config)).repairs).toEqual([]);
    w.clock.advance(START_TIMEOUT_MS); // now stale from its fence too, and Glue has no run: given up
    expect((await sweep(w.deps, w.config)).repairs).toContain("undid-failed-start");
  });

  it("a start revoked before its run item existed cannot write it after: the revoker wrote it closed", async () => {
    const w = makeWorld();
    const atCreate = gated(w.ledger, "createRun", 1, "before");
    const stalled = handleUploadBatch({ ...w.deps, ledger: atCreate.proxy }, w.config, [
      w.upload("input/a.csv").message,
    ]);
    await atCreate.arrived;
    const holder = w.ledger.slot.holder ?? "";
    w.clock.advance(START_TIMEOUT_MS + 1_000);
    const report = await sweep(w.deps, w.config);
    expect(report.repairs).toEqual(["freed-stale-slot", "started-pending"]);
    expect(w.ledger.runs.get(holder)).toMatchObject({ state: "start_failed", glueRunId: null, fileCount: 0 });

    atCreate.open(); // the stalled starter writes its run item now: refused
    await stalled;

    expect(w.ledger.runs.get(holder)?.state).toBe("start_failed");
    expect(w.glue.runs.size).toBe(1); // the sweeper's run, with a.csv
    const next = report.next?.started ? report.next : null;
    expect((await w.manifestOf(next?.runKey ?? "")).uploads.map((u) => u.key)).toEqual(["input/a.csv"]);
  });

  it("a start left open without the slot (its revoker died mid-repair) is closed by the sweeper", async () => {
    const w = makeWorld();
    const createdAt = w.clock.now().toISOString();
    await w.ledger.createRun(runRecord("20260401T100000Z-left", createdAt));
    w.clock.advance(START_TIMEOUT_MS - 1_000);
    await sweep(w.deps, w.config);
    expect(w.ledger.runs.get("20260401T100000Z-left")?.state).toBe("starting"); // young: its starter may be alive

    w.clock.advance(2_000);
    await sweep(w.deps, w.config);

    expect(w.ledger.runs.get("20260401T100000Z-left")?.state).toBe("start_failed");
  });
});

describe("the fence's edges", () => {
  it("a revoked starter gives back what it claimed after the repairer's pass, with no attempt charged", async () => {
    const w = makeWorld();
    // Starter 1 is paused before its second claim: b is still pending when the repairer undoes the start.
    const slow = gated(w.ledger, "claimUpload", 2, "before");
    const first = handleUploadBatch({ ...w.deps, ledger: slow.proxy }, w.config, [
      w.upload("input/a.csv").message,
      w.upload("input/b.csv").message,
    ]);
    await slow.arrived;
    const holder = w.ledger.slot.holder ?? "";
    w.clock.advance(START_TIMEOUT_MS + 1_000);
    // the repairer only revokes and undoes (no start of its own): a is given back, b was never claimed
    expect(await revokeStaleStart(w.deps, w.config.runs, w.ledger.slot, w.clock.now())).toBe("undid-failed-start");
    expect(w.ledger.runs.get(holder)?.state).toBe("start_failed");

    slow.open(); // b's claim lands now, in the revoked start; its fence then fails and it gives b back
    const woke = await first;

    // ...then goes round, finds the slot free and starts a run with both (none left running in the revoked start)
    const next = woke.run?.started ? woke.run : null;
    expect(next).not.toBeNull();
    for (const u of w.ledger.uploads.values()) expect(u).toMatchObject({ runKey: next?.runKey, attempts: 0 });
    expect((await w.manifestOf(next?.runKey ?? "")).uploads.map((u) => u.key).sort()).toEqual([
      "input/a.csv",
      "input/b.csv",
    ]);
  });

  it("a start whose Glue run ended (and was recorded) before the start recorded it is not stopped", async () => {
    const w = makeWorld();
    const atRecord = gated(w.ledger, "updateRun", 1, "before"); // the start's own write after StartJobRun's answer
    const first = handleUploadBatch({ ...w.deps, ledger: atRecord.proxy }, w.config, [w.upload("input/a.csv").message]);
    await atRecord.arrived;
    const [run] = [...w.ledger.runs.values()];
    const [glueRun] = [...w.glue.runs.values()];
    await w.writeStats(run?.runKey ?? "");
    w.glue.finish(glueRun?.id ?? "", "SUCCEEDED");
    await recordRunEnd(w.deps, w.config, { glueRunId: glueRun?.id ?? "", state: "SUCCEEDED", message: null });
    expect(w.ledger.runs.get(run?.runKey ?? "")?.state).toBe("succeeded");

    atRecord.open();

    expect((await first).run).toMatchObject({ started: true, runKey: run?.runKey });
    expect(w.glue.stopped).toEqual([]);
    expect([...w.ledger.uploads.values()][0]?.status).toBe("processed");
  });

  it("a stop Glue refuses is logged; the given-up start still reports not started", async () => {
    const w = makeWorld();
    w.glue.stopRun = async () => {
      throw new Error("BatchStopJobRun jr_x: InvalidInputException: not running");
    };
    const paused = gated(w.glue, "startRun", 1, "before");
    const first = handleUploadBatch({ ...w.deps, glue: paused.proxy }, w.config, [w.upload("input/a.csv").message]);
    await paused.arrived;
    w.clock.advance(START_TIMEOUT_MS + 1_000);
    const report = await sweep(w.deps, w.config);
    w.glue.finish(report.next?.started ? report.next.glueRunId : "", "SUCCEEDED");
    paused.open();

    expect((await first).run).toMatchObject({ started: false });
    expect(w.log.lines.some((e) => e.message.startsWith("could not stop the Glue run"))).toBe(true);
  });

  it("a slot freed between a refused take and the wake-up request is taken on the next round", async () => {
    const w = makeWorld();
    const busy = await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    const held = busy.run?.started ? busy.run : null;
    // The run ends and its slot is freed just as the next batch asks for a wake-up.
    const racing = racedBefore(
      w.ledger,
      (method) => method === "requestWakeup" && w.ledger.slot.holder === held?.runKey,
      async () => {
        await w.writeStats(held?.runKey ?? "");
        w.glue.finish(held?.glueRunId ?? "", "SUCCEEDED");
        await w.ledger.updateRun(held?.runKey ?? "", ["running"], { state: "succeeded" });
        await w.ledger.releaseSlot(held?.runKey ?? "");
      },
    );
    const next = await handleUploadBatch({ ...w.deps, ledger: racing.proxy }, w.config, [
      w.upload("input/b.csv").message,
    ]);
    expect(next.run).toMatchObject({ started: true, files: 1 });
  });

  it("the revoker's closed run item meets the starter's own landing first: the start is revoked as one that exists", async () => {
    const w = makeWorld();
    const atFence = gated(w.ledger, "markLaunched", 1, "before");
    const atCreate = gated(atFence.proxy, "createRun", 1, "before");
    const stalled = handleUploadBatch({ ...w.deps, ledger: atCreate.proxy }, w.config, [
      w.upload("input/a.csv").message,
    ]);
    await atCreate.arrived;
    const holder = w.ledger.slot.holder ?? "";
    w.clock.advance(START_TIMEOUT_MS + 1_000);
    // the repairer reads no run item; the stalled starter's createRun lands just before the repairer's own (and the
    // starter goes on to its fence, where it is held)
    const repairer = racedBefore(
      w.ledger,
      (method) => method === "createRun",
      async () => {
        atCreate.open();
        await new Promise<void>((resolve) => setImmediate(resolve));
      },
    );
    const repair = await revokeStaleStart(
      { ...w.deps, ledger: repairer.proxy },
      w.config.runs,
      w.ledger.slot,
      w.clock.now(),
    );
    expect(repair).toBe("undid-failed-start");
    expect(w.ledger.runs.get(holder)?.state).toBe("start_failed");

    atFence.open();
    const woke = await stalled; // its fence fails; it goes round and starts a run of its own

    expect(w.glue.runs.size).toBe(1);
    const next = woke.run?.started ? woke.run : null;
    expect(next?.runKey).not.toBe(holder);
    for (const u of w.ledger.uploads.values()) expect(u.runKey).toBe(next?.runKey);
  });

  it("a slot an older version took (counted as launched) with no run item is freed by the sweeper once stale", async () => {
    const w = makeWorld();
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    w.ledger.slot = { ...w.ledger.slot, holder: "20260401T095959Z-old", launched: true, launchedAt: null };
    w.clock.advance(START_TIMEOUT_MS - 1_000);
    expect((await sweep(w.deps, w.config)).repairs).toEqual([]);
    w.clock.advance(2_000);
    expect((await sweep(w.deps, w.config)).repairs).toContain("freed-stale-slot");
    expect(w.ledger.slot.holder).not.toBe("20260401T095959Z-old");
  });
});
