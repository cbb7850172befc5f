/**
 * Intake: one batch of ingest-queue messages → uploads recorded in the ledger → at most one run started.
 *
 * An upload is identified by what S3 says about the key now (HeadObject), not by the event: duplicate deliveries
 * of one upload collapse onto one ledger item, a re-upload (new last-modified) is a new item, and a late event for
 * an older version resolves to the current version, so an overwritten version is never processed.
 */
import type { PipelineConfig } from "../config/pipeline.js";
import { messageOf, StartRunError } from "../errors.js";
import type { Deps } from "../ledger/ports.js";
import type { UploadRecord } from "../ledger/types.js";
import { candidateKeys, compareSequencers, type ObjectCreated, parseObjectCreated } from "../upload/events.js";
import { normalizeEtag, normalizeVersionId, type ObjectVersion, toUpload, type Upload } from "../upload/identity.js";
import { mapLimit, type StartOutcome, startNextRun } from "./start.js";

export interface QueueMessage {
  readonly messageId: string;
  readonly body: string;
}

export interface IntakeResult {
  /** Messages SQS must deliver again (batch item failures). */
  readonly failedMessageIds: string[];
  readonly recorded: number;
  readonly duplicates: number;
  readonly ignored: number;
  readonly run: StartOutcome | null;
  /**
   * The burst hold held this batch's start: the caller has ONE of `messageIds` (messages whose upload is pending) come
   * back in `seconds`, when the hold ends, so its batch starts the run even if no other batch comes (see
   * RunSettings.burstHoldSeconds). null otherwise. Not among failedMessageIds.
   */
  readonly heldBurst: { readonly messageIds: readonly string[]; readonly seconds: number } | null;
}

/** Requests in flight per invocation (S3 HeadObject, DynamoDB writes). */
const IO_CONCURRENCY = 64;

type Resolved = { upload: Upload; failure?: string } | { duplicateOf: UploadRecord } | { error: unknown };

export async function handleUploadBatch(
  deps: Deps,
  config: PipelineConfig,
  messages: readonly QueueMessage[],
): Promise<IntakeResult> {
  const { log, metrics } = deps;
  const events = new Map<string, ObjectCreated>();
  const latestEventOfKey = new Map<string, ObjectCreated>();
  let ignored = 0;
  for (const m of messages) {
    const parsed = parseObjectCreated(m.body, deps.bucket);
    if (parsed.kind === "ignored") {
      ignored++;
      log.info("message ignored", { messageId: m.messageId, reason: parsed.reason });
    } else {
      events.set(m.messageId, parsed.event);
      const seen = latestEventOfKey.get(parsed.event.key);
      if (!seen || isLaterEvent(parsed.event, seen)) latestEventOfKey.set(parsed.event.key, parsed.event);
    }
  }
  if (ignored > 0) metrics.add("EventsIgnored", ignored);

  // One HeadObject per distinct key in the batch.
  const byKey = new Map<string, Resolved>();
  await mapLimit([...latestEventOfKey.values()], IO_CONCURRENCY, async (event) => {
    byKey.set(event.key, await resolveUpload(deps, event, config.limits.maxFileBytes));
  });

  // Record each distinct upload once; remember which messages it answers for.
  const failed = new Set<string>();
  const needsRun = new Set<string>();
  // What this invocation recorded as pending: the run start claims these whatever the (lagging) pending index says.
  const known = new Map<string, UploadRecord>();
  const recordedIds = new Map<string, Promise<"created" | "created-failed" | "duplicate-pending" | "duplicate">>();
  let recorded = 0;
  let duplicates = 0;
  const nowIso = deps.clock.now().toISOString();
  await mapLimit([...events.entries()], IO_CONCURRENCY, async ([messageId, event]) => {
    const resolved = byKey.get(event.key) as Resolved;
    if ("error" in resolved) {
      failed.add(messageId);
      return;
    }
    if ("duplicateOf" in resolved) {
      duplicates++;
      return;
    }
    const { upload, failure } = resolved;
    let outcome = recordedIds.get(upload.uploadId);
    // A second message for the same upload in this batch is a duplicate whatever the ledger says.
    const repeatInBatch = outcome !== undefined;
    if (!outcome) {
      outcome = deps.ledger.recordUpload(upload, nowIso, failure).then(({ created, record }) => {
        if (created) {
          recorded++;
          log.info(failure ? "upload recorded as failed" : "upload recorded", {
            key: upload.key,
            uploadId: upload.uploadId,
            ...(failure ? { reason: failure } : {}),
          });
          if (record.status === "pending") known.set(record.uploadId, record);
          return record.status === "pending" ? "created" : "created-failed";
        }
        if (record.status === "pending") known.set(record.uploadId, record);
        return record.status === "pending" ? "duplicate-pending" : "duplicate";
      });
      recordedIds.set(upload.uploadId, outcome);
    }
    try {
      const o = await outcome;
      if (repeatInBatch || o === "duplicate" || o === "duplicate-pending") duplicates++;
      if (o === "created" || o === "duplicate-pending") needsRun.add(messageId);
    } catch (error) {
      log.error("could not record upload", { key: upload.key, messageId, error: messageOf(error) });
      failed.add(messageId);
    }
  });
  metrics.add("UploadsReceived", recorded);
  if (duplicates > 0) metrics.add("DuplicatesDropped", duplicates);

  let run: StartOutcome | null = null;
  if (needsRun.size > 0) {
    try {
      // A full batch means more of this burst is still on its way: hold the start (see RunSettings.burstHoldSeconds).
      const full = messages.length >= config.queue.batchSize;
      run = await startNextRun(deps, config.runs, { known: [...known.values()], burst: full });
    } catch (error) {
      if (error instanceof StartRunError) {
        // StartJobRun failed after the claims: the start was undone (backing off) or is left for the sweeper to find
        // by its run key. Either way the uploads are safe in the ledger and the sweeper starts them: returning the
        // messages would only bounce them into the DLQ.
        log.error("could not start a run; the sweeper will", { runKey: error.runKey, error: messageOf(error) });
      } else {
        // The uploads are safe in the ledger, but nothing may be left waiting on a run nobody starts: SQS redelivers
        // these messages (after the visibility timeout) and their redelivery tries again.
        log.error("could not start a run; returning the batch's uploads to SQS", { error: messageOf(error) });
        for (const id of needsRun) failed.add(id);
      }
    }
  }
  const heldBurst =
    run?.started === false && run.reason === "holding-burst"
      ? {
          messageIds: [...needsRun].filter((id) => !failed.has(id)),
          // Back when the hold ends, never sooner: a batch that is not full starts at once, so a message back before
          // the hold ends would start the burst early and split it. Lambda's poller may then gather it for up to one
          // batching window (when that window begins is the poller's business), so the run starts 0–60 s after.
          seconds: run.retryInSeconds,
        }
      : null;
  return { failedMessageIds: [...failed], recorded, duplicates, ignored, run, heldBurst };
}

async function resolveUpload(deps: Deps, event: ObjectCreated, maxFileBytes: number): Promise<Resolved> {
  try {
    for (const key of candidateKeys(event.key)) {
      const head: ObjectVersion | null = await deps.objects.head(event.bucket, key);
      if (head) {
        if (event.etag && head.etag.replaceAll('"', "") !== event.etag) {
          deps.log.info("event is for another version of the key; recording the current one", { key });
        }
        const upload = toUpload(head);
        // Never put in a run: one file Glue cannot finish would hold the only run slot while every other upload waits.
        if (head.size > maxFileBytes) return { upload, failure: tooLarge(head.size, maxFileBytes) };
        return { upload };
      }
    }
    // Gone. A late or repeated event for a version the ledger has is a duplicate, whatever its time says.
    const versionId = normalizeVersionId(event.versionId);
    const etag = event.etag ? normalizeEtag(event.etag) : null;
    const known = (await deps.ledger.uploadsOfKey(event.bucket, event.key)).find((u) =>
      versionId ? u.versionId === versionId : etag !== null && u.etag === etag,
    );
    if (known) return { duplicateOf: known };
    // Deleted before we saw it: recorded as failed so the user gets an answer, not silence.
    return { upload: deletedUpload(event), failure: "the object was deleted before it could be processed" };
  } catch (error) {
    deps.log.error("HeadObject failed", { key: event.key, error: messageOf(error) });
    return { error };
  }
}

/** Whether `a` is a later event for its key than `b`: S3's sequencer decides; without one, the later delivery. */
function isLaterEvent(a: ObjectCreated, b: ObjectCreated): boolean {
  if (a.sequencer && b.sequencer) return compareSequencers(a.sequencer, b.sequencer) > 0;
  return false;
}

/**
 * The upload of a version deleted before intake. Its identity comes from what S3 said about the version (version id,
 * etag, sequencer), never from the event's time, so every delivery of the event lands on the same ledger item.
 */
function deletedUpload(event: ObjectCreated): Upload {
  const versionId = normalizeVersionId(event.versionId);
  const etag = normalizeEtag(event.etag ?? "unknown");
  const versionTag = `deleted-${event.sequencer ?? "0"}-${versionId ?? etag}`;
  return {
    bucket: event.bucket,
    key: event.key,
    versionId,
    etag,
    lastModified: Number.isNaN(Date.parse(event.time)) ? new Date(0).toISOString() : new Date(event.time).toISOString(),
    size: event.size ?? 0,
    versionTag,
    uploadId: `${event.bucket}/${event.key}@${versionTag}`,
  };
}

/** The reason an upload over the per-file cap is failed with (shown by `ingest status`). */
export function tooLarge(size: number, maxFileBytes: number): string {
  return `too large: ${size} bytes is over the per-file cap of ${maxFileBytes} bytes (limits.maxFileBytes); split the file and upload the parts`;
}
