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
