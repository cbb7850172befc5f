/** The fault layer's Glue side: the local Glue service's fault hooks and the state-change publisher's faults. */
import type { StateChangePublisher } from "../glue/events.js";
import type { GlueFaults } from "../glue/service.js";
import type { FaultDice } from "./config.js";

/** What AWS answers a StartJobRun with when it has trouble; OperationTimeoutException is a client fault in the SDK. */
const START_ERRORS = [
  { type: "InternalServiceException", message: "An internal service error occurred (injected)" },
  { type: "OperationTimeoutException", message: "The operation timed out (injected)" },
  { type: "ThrottlingException", message: "Rate exceeded (injected)" },
] as const;

export function glueFaults(dice: FaultDice): GlueFaults {
  return {
    startError() {
      if (dice.roll("glueStartError")) return { when: "before", ...dice.pick("glueStartError", START_ERRORS) };
      if (dice.roll("glueStartErrorAfterStart")) {
        return { when: "after", ...dice.pick("glueStartErrorAfterStart", START_ERRORS) };
      }
      return null;
    },
    waitingThenFail() {
      if (!dice.roll("glueWaitingFailed")) return null;
      return {
        waitMs: dice.setting("glueWaitingMs"),
        message: "Resource unavailable: the run waited for capacity and was not started (injected)",
      };
    },
    internalFailure() {
      return dice.roll("glueInternalFailure")
        ? "InternalServiceException: an internal error ended the run (injected; not caused by its input)"
        : null;
    },
    slotReleaseLagMs() {
      return dice.roll("glueSlotLag") ? dice.uniform("glueSlotLag", dice.setting("glueSlotLagMs")) : 0;
    },
  };
}

/** State-change events lost (never published) or published twice. */
export function faultyPublisher(publish: StateChangePublisher, dice: FaultDice): StateChangePublisher {
  return async (detail) => {
    if (dice.roll("glueEventLost")) return;
    await publish(detail);
    if (dice.roll("glueEventDuplicate")) await publish(detail);
  };
}
