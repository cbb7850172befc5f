import { describe, expect, it } from "vitest";
import { stateChangeDetail } from "../../src/glue/events.js";
import { failureLine, fileUri, folderUri, parseS3Uri } from "../../src/glue/spark.js";
import { failKeysFromEnv } from "../../src/twin.js";

describe("Glue Job State Change detail", () => {
  it("has AWS's fields and severities", () => {
    const base = { jobName: "j", id: "jr_1", errorMessage: null };
    expect(stateChangeDetail({ ...base, state: "SUCCEEDED" })).toEqual({
      jobName: "j",
      severity: "INFO",
      state: "SUCCEEDED",
      jobRunId: "jr_1",
      message: "Job run succeeded",
    });
    expect(stateChangeDetail({ ...base, state: "FAILED", errorMessage: "boom" })).toMatchObject({
      severity: "ERROR",
      message: "boom",
    });
    expect(stateChangeDetail({ ...base, state: "TIMEOUT" }).severity).toBe("WARN");
  });
});

describe("spark executor helpers", () => {
  it("parses s3 URIs and builds literal file URIs (as the job and Hadoop read them), folders with a trailing slash", () => {
    expect(parseS3Uri("s3://b/manifests/k.json")).toEqual({ bucket: "b", key: "manifests/k.json" });
    expect(() => parseS3Uri("file:///x")).toThrow();
    expect(folderUri("/tmp/a b")).toBe("file:///tmp/a b/");
    expect(fileUri("/tmp/my runs/r#1 %41?.json")).toBe("file:///tmp/my runs/r#1 %41?.json");
  });

  it("picks the error line of a failed job's log", () => {
    expect(failureLine("starting\nTraceback (most recent call last):\n  File x\nValueError: bad input\n")).toBe(
      "ValueError: bad input",
    );
    expect(failureLine("only this\n")).toBe("only this");
    const spark = [
      "Traceback (most recent call last):",
      '  File "/work/main/glue/job.py", line 132, in <module>',
      "    main(sys.argv)",
      "errors.RunFailed: run k: no upload could be processed",
      "2026-11-27 03:49:50,014 INFO py4j.clientserver Closing down clientserver connection",
    ].join("\n");
    expect(failureLine(spark)).toBe("errors.RunFailed: run k: no upload could be processed");
    expect(failureLine("java.lang.OutOfMemoryError: heap\n26/11/27 03:49:50 INFO ShutdownHookManager: bye\n")).toBe(
      "java.lang.OutOfMemoryError: heap",
    );
  });

  it("reads TWIN_GLUE_FAIL_KEYS as a comma-separated list", () => {
    expect(failKeysFromEnv({ TWIN_GLUE_FAIL_KEYS: "poison, bad ,," })).toEqual(["poison", "bad"]);
    expect(failKeysFromEnv({})).toEqual([]);
  });
});

describe("spark executor: staging and publishing a run of many small uploads", () => {
  it("copies objects up to COPY_CONCURRENCY at once each way, and reports its phases", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { buildManifest, toUpload } = await import("@ingest/core");
    const { COPY_CONCURRENCY, sparkExecutor } = await import("../../src/glue/spark.js");
    const root = mkdtempSync(join(tmpdir(), "twin-executor-"));
    // Stands in for job.py: writes 3 files per upload under --output_root (a literal file:// folder URI).
    const script = join(root, "job.mjs");
    writeFileSync(
      script,
      `import { mkdirSync, writeFileSync } from "node:fs";
       const a = process.argv.slice(2); const out = a[a.indexOf("--output_root") + 1].slice("file://".length);
       for (let i = 0; i < 40; i++) { mkdirSync(out + "processed/f" + i, { recursive: true });
         for (const n of ["part-00000.csv", "_SUCCESS", "x.json"]) writeFileSync(out + "processed/f" + i + "/" + n, "x"); }`,
    );
    const uploads = Array.from({ length: 40 }, (_, i) =>
      toUpload({
        bucket: "data",
        key: `input/f${i}.csv`,
        versionId: null,
        etag: "e",
        lastModified: "2026-04-01T09:00:00.000Z",
        size: 1,
      }),
    );
    const manifest = buildManifest({
      runKey: "R",
      bucket: "data",
      createdAt: new Date("2026-04-01T10:00:00Z"),
      uploads,
    });
    let active = 0;
    let peak = 0;
    const puts: string[] = [];
    const s3 = {
      send: async (command: { constructor: { name: string }; input: { Key: string } }) => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setImmediate(r)); // every call yields: the copies overlap as far as allowed
        active--;
        if (command.constructor.name === "PutObjectCommand") {
          puts.push(command.input.Key);
          return {};
        }
        const body = command.input.Key === "manifests/R.json" ? JSON.stringify(manifest) : "id\n";
        return { Body: { transformToByteArray: async () => new TextEncoder().encode(body) } };
      },
    };
    const lines: string[] = [];
    const run = sparkExecutor({
      s3: s3 as never,
      python: process.execPath,
      script,
      stageRoot: join(root, "stage"),
      log: { info: (m) => lines.push(m) },
    });
    const result = await run({
      id: "jr_1",
      jobName: "j",
      arguments: { "--manifest_uri": "s3://control/manifests/R.json", "--run_key": "R" },
      signal: new AbortController().signal,
    });
    expect(result).toEqual({ ok: true });
    expect(puts).toHaveLength(120);
    expect(COPY_CONCURRENCY).toBe(32);
    expect(peak).toBe(32);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^glue: run jr_1… staged 40 upload\(s\) in [\d.]+ s, job\.py [\d.]+ s, published 120 object\(s\) in [\d.]+ s$/,
    );
  });
});
