/**
 * The sweeper (scheduled): repairs what lost events and crashes leave behind, through the same code paths as
 * completion and intake.
 *  - the slot's run is running but Glue says it ended (the state-change event was lost) → recordRunEnd
 *  - the slot's run never got a Glue run id and is older than the start timeout → adopt the Glue run that carries
 *    its run key (the start's answer was lost), or undo the start when Glue has none
 *  - the slot is held by a run that has already ended, or by no run at all (crash between steps) → free it
 *  - uploads are pending and no run is active → startNextRun
 */
import type { PipelineConfig } from "../config/pipeline.js";
import type { Deps } from "../ledger/ports.js";
import { isTerminalGlueState, recordRunEnd } from "./completion.js";
import { readManifest, type StartOutcome, startNextRun, undoStart } from "./start.js";

export type Repair =
  | "recorded-lost-end"
  | "adopted-lost-start"
  | "undid-failed-start"
  | "freed-stale-slot"
  | "started-pending";

export interface SweepReport {
  readonly repairs: Repair[];
  readonly next: StartOutcome | null;
}

export async function sweep(deps: Deps, config: PipelineConfig): Promise<SweepReport> {
  const { ledger, glue, log } = deps;
  const repairs: Repair[] = [];
  const now = deps.clock.now();
  const slot = await ledger.getSlot();
  if (slot.holder) {
    const run = await ledger.getRun(slot.holder);
    const heldFor = now.getTime() - new Date(slot.takenAt ?? 0).getTime();
    const stale = heldFor > config.runs.startTimeoutSeconds * 1000;
    if (!run) {
      if (stale) {
        await ledger.releaseSlot(slot.holder);
        repairs.push("freed-stale-slot");
      }
    } else if (run.state !== "starting" && run.state !== "running") {
      await ledger.releaseSlot(run.runKey);
      repairs.push("freed-stale-slot");
    } else {
      let glueRunId = run.glueRunId;
      if (!glueRunId && stale) {
        const since = new Date(new Date(run.createdAt).getTime() - 60_000);
        const found = (await glue.recentRuns(since)).find((r) => r.arguments["--run_key"] === run.runKey);
        if (found) {
          glueRunId = found.id;
          await ledger.linkGlueRun(found.id, run.runKey);
          await ledger.updateRun(run.runKey, ["starting"], {
            state: "running",
            glueRunId: found.id,
            startedAt: found.startedOn?.toISOString() ?? null,
          });
          repairs.push("adopted-lost-start");
        } else {
          await undoStart(deps, run.runKey, await readManifest(deps, run), "the run never started (start lost)");
          repairs.push("undid-failed-start");
        }
      }
      if (glueRunId) {
        const jr = await glue.getRun(glueRunId);
        if (jr && isTerminalGlueState(jr.state)) {
          const result = await recordRunEnd(deps, config, { glueRunId, state: jr.state, message: jr.errorMessage });
          if (result.applied) repairs.push("recorded-lost-end");
          log.info("sweeper recorded a run end", { runKey: run.runKey, glueRunId, state: jr.state });
          return { repairs, next: result.next };
        }
      }
    }
  }
  const next = await startNextRun(deps, config.runs);
  if (next.started) repairs.push("started-pending");
  if (repairs.length > 0) {
    deps.metrics.add("SweeperRepairs", repairs.length);
    log.warn("sweeper repaired", { repairs });
  }
  return { repairs, next };
}
