/**
 * Reproduction of a finding from the coalescing simulation's traces (BENCH_TRACE=1 --faults=stress): claims that
 * outlive a failed run start. Not a test; prints what happens, step by step, with the real logic.
 *
 *   pnpm exec tsx packages/core/bench/repro-late-claim.ts
 *
 * startClaimedRun claims with mapLimit(32). When one claim throws (a DynamoDB throttle), Promise.all rejects and the
 * batcher answers, but the other claim workers are not cancelled: they go on claiming the rest of the candidates for
 * the abandoned run. On Lambda, work left when the handler returns is frozen with the environment and resumes at its
 * next invocation. If that is after the sweeper has undone the start (startTimeoutSeconds later) and the uploads are
 * pending again, the late claims turn them into "running" in a run that is closed (start_failed): nothing settles
 * them, listPending no longer sees them and the sweeper only looks at the slot's run, so they are never processed.
 *
 * Status: fixed in b425bb7 (mapLimit stops on the first failure and awaits what is in flight; a start that fails
 * before StartJobRun is undone at once). Before that commit step 5 printed 50 uploads "running in a start_failed
 * run" forever; with it, 0 claims are parked and all 100 uploads are processed. Kept as a regression check.
 */
import { recordRunEnd } from "../src/runs/completion.js";
import { handleUploadBatch } from "../src/runs/intake.js";
import { sweep } from "../src/runs/sweeper.js";
import { makeWorld } from "../tests/helpers/world.js";

async function main(): Promise<void> {
  const w = makeWorld();
  // The batcher's view of the ledger: once its handler has answered, its leftover calls wait for a thaw.
  let frozen = false;
  const parked: (() => void)[] = [];
  const batcherLedger = new Proxy(w.ledger, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop);
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        if (frozen) await new Promise<void>((resolve) => parked.push(resolve));
        return value.apply(obj, args);
      };
    },
  });
  const statuses = () => {
    const c: Record<string, number> = {};
    for (const u of w.ledger.uploads.values()) {
      const runState = u.runKey ? w.ledger.runs.get(u.runKey)?.state : null;
      const label = u.status === "running" ? `running in a ${runState} run` : u.status;
      c[label] = (c[label] ?? 0) + 1;
    }
    return c;
  };

  // 1. 100 uploads; the 10th claim of the run start is throttled.
  const messages = Array.from({ length: 100 }, (_, i) => w.upload(`input/f${i}.csv`).message);
  const claim = w.ledger.claimUpload.bind(w.ledger);
  let claims = 0;
  w.ledger.claimUpload = async (...args) => {
    if (++claims === 10) throw new Error("ProvisionedThroughputExceededException (simulated)");
    return claim(...args);
  };
  const r = await handleUploadBatch({ ...w.deps, ledger: batcherLedger }, w.config, messages);
  frozen = true; // the batcher answered: its environment is frozen with claim workers mid-flight
  w.ledger.claimUpload = claim;
  console.log(`1. batcher answered: ${r.failedMessageIds.length} messages back to SQS, run ${JSON.stringify(r.run)}`);

  // 2. 16 min later the sweeper undoes the start that never reached Glue and starts a run with the pending uploads.
  w.clock.advance((w.config.runs.startTimeoutSeconds + 60) * 1000);
  const s1 = await sweep(w.deps, w.config);
  console.log(`2. sweeper: ${s1.repairs.join(", ")};`, statuses(), `(${parked.length} claims parked)`);

  // 3. That run fails in Glue: its uploads go back to pending, retried in halves (run of 50, then the other 50).
  const run2 = s1.next?.started ? s1.next : null;
  if (!run2) throw new Error("the sweeper started no run");
  w.glue.finish(run2.glueRunId, "FAILED", "simulated");
  const end2 = await recordRunEnd(w.deps, w.config, { glueRunId: run2.glueRunId, state: "FAILED", message: null });
  console.log("3. run failed, retry started:", end2.next?.started ? end2.next.files : 0, "files;", statuses());

  // 4. The batcher's environment is invoked again: the parked claims of the abandoned run land.
  frozen = false;
  for (const resume of parked.splice(0)) resume();
  await new Promise((resolve) => setTimeout(resolve, 20));
  console.log("4. thawed:", statuses());

  // 5. Every run from now on succeeds; the sweeper runs for hours.
  for (let i = 0; i < 24; i++) {
    for (const jr of w.glue.active()) {
      const runKey = jr.arguments["--run_key"] ?? "";
      await w.writeStats(runKey);
      w.glue.finish(jr.id, "SUCCEEDED");
      await recordRunEnd(w.deps, w.config, { glueRunId: jr.id, state: "SUCCEEDED", message: null });
    }
    w.clock.advance(w.config.runs.sweepIntervalMinutes * 60_000);
    await sweep(w.deps, w.config);
  }
  console.log("5. two hours later:", statuses(), `slot ${w.ledger.slot.holder ?? "free"}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
