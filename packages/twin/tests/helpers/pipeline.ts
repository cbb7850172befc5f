/** The run keys a test saw before it acted (see TwinProbe.markRuns). */
export interface RunMark {
  readonly before: ReadonlySet<string>;
}

/** Reading the twin's outcome the way a user would: the ledger (DynamoLedger) and the bucket. */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DynamoLedger } from "@ingest/adapters";
import type { RunRecord, UploadRecord } from "@ingest/core";
import { clientConfig } from "../../src/aws.js";
import { TWIN_NAMES } from "../../src/constants.js";
import type { Twin } from "../../src/twin.js";
import { eventually } from "./twin.js";

export class TwinProbe {
  readonly s3: S3Client;
  readonly ledger: DynamoLedger;
  private readonly dynamo: DynamoDBClient;

  constructor(readonly twin: Twin) {
    this.s3 = new S3Client({ ...clientConfig(twin.endpoints.aws), forcePathStyle: true });
    this.dynamo = new DynamoDBClient(clientConfig(twin.endpoints.aws));
    this.ledger = new DynamoLedger({ client: this.dynamo, tableName: twin.names.ledgerTable });
  }

  close() {
    this.s3.destroy();
    this.dynamo.destroy();
  }

  async put(key: string, body: string) {
    await this.s3.send(new PutObjectCommand({ Bucket: this.twin.names.bucket, Key: key, Body: body }));
  }

  /** Uploads at once, like `ingest upload` does. */
  async putAll(files: readonly { key: string; body: string }[], parallel = 16) {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(parallel, files.length) }, async () => {
        while (next < files.length) {
          const f = files[next++];
          if (f) await this.put(f.key, f.body);
        }
      }),
    );
  }

  async text(key: string, bucket: string = this.twin.names.bucket): Promise<string> {
    const r = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (await r.Body?.transformToString("utf8")) ?? "";
  }

  /** A run's manifest lives in the control bucket (uploaders cannot write there). */
  async manifestText(manifestKey: string): Promise<string> {
    return this.text(manifestKey, TWIN_NAMES.controlBucket);
  }

  async keysUnder(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.twin.names.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = r.NextContinuationToken;
    } while (token);
    return keys;
  }

  /** The key part of an s3://bucket/... URI of this twin's bucket. */
  keyOf(uri: string): string {
    const prefix = `s3://${this.twin.names.bucket}/`;
    if (!uri.startsWith(prefix)) throw new Error(`${uri} is not in ${prefix}`);
    return uri.slice(prefix.length);
  }

  /** The processed CSV rows of an output folder (all part files, header once). */
  async processedRows(outputUri: string): Promise<string[]> {
    const keys = (await this.keysUnder(this.keyOf(outputUri))).filter((k) => /part-[^/]*\.csv$/.test(k));
    const rows: string[] = [];
    for (const k of keys) {
      const lines = (await this.text(k)).split(/\r?\n/).filter(Boolean);
      rows.push(...lines.slice(1));
    }
    return rows;
  }

  async uploadsOf(key: string): Promise<UploadRecord[]> {
    return this.ledger.uploadsOfKey(this.twin.names.bucket, key);
  }

  /** Waits until every upload of these keys is settled (processed or failed) and returns the newest of each. */
  async settled(keys: readonly string[], timeoutMs = 180_000): Promise<UploadRecord[]> {
    return eventually(
      `${keys.length} upload(s) settled`,
      async () => {
        const out: UploadRecord[] = [];
        for (const k of keys) {
          const us = await this.uploadsOf(k);
          const newest = us.sort((a, b) => b.versionTag.localeCompare(a.versionTag))[0];
          if (!newest || (newest.status !== "processed" && newest.status !== "failed")) return undefined;
          out.push(newest);
        }
        return out;
      },
      timeoutMs,
      500,
    );
  }

  /**
   * The runs the ledger holds now, to tell later ones apart. Not a clock: a run's `createdAt` is when its holder took
   * the slot, and a woken holder may then wait seconds for uploads recorded after that moment.
   */
  async markRuns(): Promise<RunMark> {
    return { before: new Set((await this.ledger.listRuns(1000)).map((r) => r.runKey)) };
  }

  async runsSince(mark: RunMark): Promise<RunRecord[]> {
    return (await this.ledger.listRuns(1000)).filter((r) => !mark.before.has(r.runKey));
  }

  /**
   * The runs created since `mark`, once every one of them has ended. The recorder settles a run's uploads before it
   * closes the run item, so "my upload is settled" does not yet mean "its run is closed".
   */
  async endedRunsSince(mark: RunMark, timeoutMs = 60_000): Promise<RunRecord[]> {
    return eventually(
      "the runs to end",
      async () => {
        const runs = await this.runsSince(mark);
        return runs.every((r) => r.state !== "starting" && r.state !== "running") ? runs : undefined;
      },
      timeoutMs,
      200,
    );
  }

  /** Until no run is active and nothing is pending. */
  async quiet(timeoutMs = 180_000): Promise<void> {
    await eventually(
      "the pipeline to be quiet",
      async () => {
        const slot = await this.ledger.getSlot();
        if (slot.holder) return false;
        const uploads = await this.ledger.listUploads();
        return uploads.every((u) => u.status === "processed" || u.status === "failed");
      },
      timeoutMs,
      500,
    );
  }
}
