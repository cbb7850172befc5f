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

  for (const metricName of [METRICS.runsFailed, METRICS.filesFailed]) {
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
  return { topic };
}

function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}
