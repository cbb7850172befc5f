/**
 * `ingest wait` on a twin whose S3 events are late (fault `s3EventDelay`), as on AWS: it must not report "done"
 * before the late upload is processed (issue 11, gap 3). A stand-in job (no Spark).
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { FaultDice, faultConfig, projectPaths, Twin, workspaceRoot } from "@ingest/twin";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { twinTarget } from "../../src/demo.js";
import { waitUntilIdle } from "../../src/status.js";
import type { Target } from "../../src/target.js";

const FAULTS = { seed: 4, rates: { s3EventDelay: 1 }, s3EventDelayMs: 12_000 };

describe("ingest wait with late S3 events (twin, s3EventDelay)", () => {
  let twin: Twin;
  let target: Target;
  beforeAll(async () => {
    const root = workspaceRoot();
    mkdirSync(join(root, ".twin", "tests"), { recursive: true });
    twin = await Twin.start({
      paths: projectPaths(root, mkdtempSync(join(root, ".twin", "tests", "cli-wait-"))),
      writeState: false,
      log: { info: () => undefined, warn: (m: string) => console.warn(`[twin] ${m}`) },
      glueScript: join(root, "packages", "twin", "tests", "fixtures", "standin_job.py"),
      skipSparkChecks: true,
      sweepIntervalMs: 0,
      reconcileIntervalMs: 0,
      faults: FAULTS,
    });
    target = twinTarget(twin);
  }, 120_000);
  afterAll(async () => {
    target?.close();
    await twin?.stop();
  });

  it("returns only when the late upload is processed", async () => {
    // the seed's first event is held well past `wait`'s two idle polls (same dice, same stream)
    const dice = new FaultDice(faultConfig(FAULTS, FAULTS.seed));
    expect(dice.roll("s3EventDelay")).toBe(true);
    expect(dice.uniform("s3EventDelay", FAULTS.s3EventDelayMs)).toBeGreaterThan(3_000);

    const key = "input/late/a.csv";
    await target.s3.send(new PutObjectCommand({ Bucket: target.bucket, Key: key, Body: "id,v\n1,a\n" }));
    const s = await waitUntilIdle(target, { timeoutSeconds: 90, progress: false, pollMs: 250 });
    expect(twin.faults.counts.s3EventDelay).toBe(1);
    expect(s.uploads.map((u) => [u.key, u.status])).toEqual([[key, "processed"]]);
  }, 120_000);
});
