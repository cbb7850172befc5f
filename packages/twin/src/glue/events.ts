/** The "Glue Job State Change" event the local Glue service publishes, in AWS's shape (source aws.glue). */
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { clientConfig } from "../aws.js";

export type TerminalRunState = "SUCCEEDED" | "FAILED" | "TIMEOUT" | "STOPPED" | "ERROR";

export interface GlueJobStateChangeDetail {
  readonly jobName: string;
  readonly severity: "INFO" | "WARN" | "ERROR";
  readonly state: TerminalRunState;
  readonly jobRunId: string;
  readonly message: string;
}

export function stateChangeDetail(run: {
  jobName: string;
  id: string;
  state: TerminalRunState;
  errorMessage: string | null;
}): GlueJobStateChangeDetail {
  const severity =
    run.state === "SUCCEEDED" || run.state === "STOPPED" ? "INFO" : run.state === "TIMEOUT" ? "WARN" : "ERROR";
  const message =
    run.state === "SUCCEEDED"
      ? "Job run succeeded"
      : run.state === "STOPPED"
        ? "Job run stopped"
        : (run.errorMessage ?? (run.state === "TIMEOUT" ? "Job run timed out" : "Job run failed"));
  return { jobName: run.jobName, severity, state: run.state, jobRunId: run.id, message };
}

export type StateChangePublisher = (detail: GlueJobStateChangeDetail) => Promise<void>;

/** Publishes to the emulator's default event bus, where the state-change rule routes it to the recorder queue. */
export function eventBridgePublisher(
  endpoint: string,
  credentials?: { accessKeyId: string; secretAccessKey: string },
): { publish: StateChangePublisher; close(): void } {
  const client = new EventBridgeClient({ ...clientConfig(endpoint), ...(credentials ? { credentials } : {}) });
  return {
    async publish(detail) {
      const r = await client.send(
        new PutEventsCommand({
          Entries: [
            { Source: "aws.glue", DetailType: "Glue Job State Change", Detail: JSON.stringify(detail), Resources: [] },
          ],
        }),
      );
      if (r.FailedEntryCount) {
        throw new Error(`PutEvents failed: ${r.Entries?.[0]?.ErrorCode ?? "?"} ${r.Entries?.[0]?.ErrorMessage ?? ""}`);
      }
    },
    close: () => client.destroy(),
  };
}
