/**
 * The queues between EventBridge and the handlers: each with a DLQ, and a policy that lets only its rule send.
 * Both pairs (ingest, recorder) use the config module's redrive numbers (maxReceiveCount, DLQ retention).
 */
import { EVENT_DELIVERY } from "../packages/core/src/config/pipeline";
import type { PipelineConfig } from "./shared";

/** A queue with its DLQ; both SSE-SQS (EventBridge can send to it without a KMS grant). */
export function queueWithDlq(name: string, config: PipelineConfig, visibilityTimeoutSeconds: number) {
  const dlq = new sst.aws.Queue(`${name}Dlq`, {
    transform: {
      queue: { messageRetentionSeconds: config.queue.dlqRetentionSeconds, sqsManagedSseEnabled: true },
    },
  });
  const queue = new sst.aws.Queue(`${name}Queue`, {
    visibilityTimeout: `${visibilityTimeoutSeconds} seconds`,
    dlq: { queue: dlq.arn, retry: config.queue.maxReceiveCount },
    transform: { queue: { sqsManagedSseEnabled: true } },
  });
  return { dlq, queue };
}

/** Only this rule may send to the queue (EventBridge sends as events.amazonaws.com on the rule's behalf). */
export function allowRuleToSend(name: string, queue: sst.aws.Queue, rule: aws.cloudwatch.EventRule) {
  return new aws.sqs.QueuePolicy(name, {
    queueUrl: queue.url,
    policy: aws.iam.getPolicyDocumentOutput({
      statements: [
        {
          sid: "OnlyTheRule",
          effect: "Allow",
          principals: [{ type: "Service", identifiers: ["events.amazonaws.com"] }],
          actions: ["sqs:SendMessage"],
          resources: [queue.arn],
          conditions: [{ test: "ArnEquals", variable: "aws:SourceArn", values: [rule.arn] }],
        },
      ],
    }).json,
  });
}

/**
 * The rule's target: its queue, with EventBridge's retry policy stated and a DLQ of the target's own, so an event
 * EventBridge cannot deliver (queue policy, throttling, a deleted queue) is kept for 14 days instead of dropped.
 * Both the queue and the DLQ let only this rule send.
 */
export function ruleTarget(
  name: string,
  config: PipelineConfig,
  rule: aws.cloudwatch.EventRule,
  queue: sst.aws.Queue,
  queuePolicyName: string,
) {
  const dlq = new sst.aws.Queue(`${name}Dlq`, {
    transform: {
      queue: { messageRetentionSeconds: config.queue.dlqRetentionSeconds, sqsManagedSseEnabled: true },
    },
  });
  allowRuleToSend(queuePolicyName, queue, rule);
  allowRuleToSend(`${name}DlqPolicy`, dlq, rule);
  const target = new aws.cloudwatch.EventTarget(name, {
    rule: rule.name,
    arn: queue.arn,
    deadLetterConfig: { arn: dlq.arn },
    retryPolicy: {
      maximumRetryAttempts: EVENT_DELIVERY.maximumRetryAttempts,
      maximumEventAgeInSeconds: EVENT_DELIVERY.maximumEventAgeSeconds,
    },
  });
  return { target, dlq };
}

/** How a handler consumes its queue: batch size, window and concurrency from the config module. */
export interface BatchTrigger {
  readonly batchSize: number;
  readonly batchingWindowSeconds: number;
  readonly maximumConcurrency: number;
}

/** The subscribe arguments for a trigger: partial batch responses on (SST's default is off: a returned
 * batchItemFailures list would be ignored), and the mapping's maximum concurrency (SST has no option for it). */
export function batchSubscription(trigger: BatchTrigger): sst.aws.QueueSubscriberArgs {
  return {
    batch: {
      size: trigger.batchSize,
      window: `${trigger.batchingWindowSeconds} seconds`,
      partialResponses: true,
    },
    transform: {
      eventSourceMapping: (args) => {
        args.scalingConfig = { maximumConcurrency: trigger.maximumConcurrency };
      },
    },
  };
}
