/**
 * Alarms: a message in either DLQ (something the pipeline gave up on), and failed runs or files as the recorder
 * counts them (Powertools metrics, EMF via logs). All notify one SNS topic; subscribe to it per stage.
 */
import { OBSERVABILITY } from "../packages/core/src/config/pipeline";
import { METRICS } from "../packages/core/src/ledger/ports";
import { physicalName } from "./shared";

/** Where the handlers' Powertools metrics land: namespace and the `service` dimension they set. */

export interface AlarmInputs {
  readonly dlqs: Record<string, sst.aws.Queue>;
  /** EventBridge rules whose deliveries must not fail (FailedInvocations, InvocationsFailedToBeSentToDlq). */
  readonly rules: Record<string, aws.cloudwatch.EventRule>;
  /** The ingest queue and how old its oldest message may get (the config module's alarms settings). */
  readonly ingestQueue: { readonly queue: sst.aws.Queue; readonly oldestMessageSeconds: number };
  /** Scheduled handlers whose invocations must not fail, with their interval (one alarm period). */
  readonly scheduled: Record<string, { readonly cron: sst.aws.Cron; readonly intervalMinutes: number }>;
}

export function createAlarms(inputs: AlarmInputs) {
  const topic = new aws.sns.Topic("Alerts", { name: physicalName("alerts", 256) });
  const common = {
    evaluationPeriods: 1,
    threshold: 0,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "notBreaching",
    alarmActions: [topic.arn],
    okActions: [topic.arn],
  };

  for (const [name, dlq] of Object.entries(inputs.dlqs)) {
    new aws.cloudwatch.MetricAlarm(`${name}NotEmpty`, {
      ...common,
      name: physicalName(`${kebab(name)}-not-empty`, 255),
      alarmDescription: `Messages in the ${name}: events the pipeline gave up on. Inspect, fix, redrive.`,
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: dlq.nodes.queue.name },
      statistic: "Maximum",
      period: 300,
    });
  }

  // CircuitOpen: the run-start breaker tripped (consecutive failures not blamed on the files, e.g. a Glue outage).
  for (const metricName of [METRICS.runsFailed, METRICS.filesFailed, METRICS.circuitOpen]) {
    new aws.cloudwatch.MetricAlarm(`${metricName}Alarm`, {
      ...common,
      name: physicalName(kebab(metricName), 255),
      alarmDescription: `${metricName} > 0: see the ledger for the run and the uploads' reasons.`,
      namespace: OBSERVABILITY.metricsNamespace,
      metricName,
      dimensions: { service: OBSERVABILITY.service },
      statistic: "Sum",
      period: 300,
    });
  }
  // A rule that cannot deliver an event to its queue: with a DLQ the event lands there (the DLQ alarms above);
  // these count what failed outright and what could not even be put in the DLQ.
  for (const [name, rule] of Object.entries(inputs.rules)) {
    for (const metricName of ["FailedInvocations", "InvocationsFailedToBeSentToDlq"]) {
      new aws.cloudwatch.MetricAlarm(`${name}${metricName}`, {
        ...common,
        name: physicalName(`${kebab(name)}-${kebab(metricName)}`),
        alarmDescription: `${metricName} on the ${name}: S3 or Glue events that did not reach their queue.`,
        namespace: "AWS/Events",
        metricName,
        dimensions: { RuleName: rule.name },
        statistic: "Sum",
        period: 300,
      });
    }
  }

  const { queue, oldestMessageSeconds } = inputs.ingestQueue;
  new aws.cloudwatch.MetricAlarm("IngestQueueOldestMessage", {
    ...common,
    threshold: oldestMessageSeconds,
    name: physicalName("ingest-queue-oldest-message"),
    alarmDescription: `An upload's event has waited over ${oldestMessageSeconds} s in the ingest queue: the batcher keeps failing or is not consuming.`,
    namespace: "AWS/SQS",
    metricName: "ApproximateAgeOfOldestMessage",
    dimensions: { QueueName: queue.nodes.queue.name },
    statistic: "Maximum",
    period: 300,
  });

  for (const [name, { cron, intervalMinutes }] of Object.entries(inputs.scheduled)) {
    new aws.cloudwatch.MetricAlarm(`${name}Errors`, {
      ...common,
      name: physicalName(`${kebab(name)}-errors`),
      alarmDescription: `The ${name} failed: see its log group. Lost events or stuck state wait for its next success.`,
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: { FunctionName: cron.nodes.function.name },
      statistic: "Sum",
      // One period per scheduled run, so every failed run is seen once.
      period: Math.max(60, intervalMinutes * 60),
    });
  }
  return { topic };
}

function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}
