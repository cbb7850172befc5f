/** The manifest and stats readers' errors: exact messages, the error's name and cause (mutation-testing gaps). */
import { describe, expect, it } from "vitest";
import { FormatError, parseManifest, parseRunStats } from "../../src/manifest/format.js";

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("did not throw");
}

describe("manifest and stats errors", () => {
  it("names itself FormatError and keeps the JSON parser's error as its cause", () => {
    const e = thrown(() => parseManifest("{", "s3://b/manifests/r1.json"));

    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).name).toBe("FormatError");
    expect((e as Error).message).toBe("s3://b/manifests/r1.json: manifest is not JSON");
    expect((e as Error).cause).toBeInstanceOf(SyntaxError);
  });

  it.each([
    ["null", "s3://b/k: stats is not an object"],
    ['"text"', "s3://b/k: stats is not an object"],
    [
      JSON.stringify({ format: "csv-ingest-stats/1", files: [null] }),
      "s3://b/k: stats files[0] has no uploadId or a bad status",
    ],
    [
      JSON.stringify({
        format: "csv-ingest-stats/1",
        files: [{ uploadId: "u", status: "processed" }, { status: "failed" }],
      }),
      "s3://b/k: stats files[1] has no uploadId or a bad status",
    ],
    [
      JSON.stringify({ format: "csv-ingest-stats/1", files: [{ uploadId: 7, status: "processed" }] }),
      "s3://b/k: stats files[0] has no uploadId or a bad status",
    ],
    [
      JSON.stringify({ format: "csv-ingest-stats/1", files: [{ uploadId: "u", status: "processed", rowsRead: 1e21 }] }),
      "s3://b/k: stats files[0].rowsRead is not a count (1e+21)",
    ],
    [
      JSON.stringify({
        format: "csv-ingest-stats/1",
        files: [{ uploadId: "u", status: "processed", rowsProcessed: "3" }],
      }),
      's3://b/k: stats files[0].rowsProcessed is not a count ("3")',
    ],
    [
      JSON.stringify({
        format: "csv-ingest-stats/1",
        files: [{ uploadId: "u", status: "processed", rowsRejected: -1 }],
      }),
      "s3://b/k: stats files[0].rowsRejected is not a count (-1)",
    ],
    [
      JSON.stringify({ format: "csv-ingest-stats/1", files: [{ uploadId: "u", status: "processed", rowsRead: 1.5 }] }),
      "s3://b/k: stats files[0].rowsRead is not a count (1.5)",
    ],
    [
      JSON.stringify({ format: "csv-ingest-stats/1", files: [{ uploadId: "u", status: "processed", output: 7 }] }),
      "s3://b/k: stats files[0].output is not a string",
    ],
    [
      JSON.stringify({ format: "csv-ingest-stats/1", files: [{ uploadId: "u", status: "failed", error: { x: 1 } }] }),
      "s3://b/k: stats files[0].error is not a string",
    ],
  ])("rejects stats %s with a FormatError saying what is wrong", (text, message) => {
    const e = thrown(() => parseRunStats(text, "s3://b/k"));

    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).message).toBe(message);
  });

  it("accepts both file statuses, counts up to 2^53 - 1 and null where a value is unknown", () => {
    const text = JSON.stringify({
      format: "csv-ingest-stats/1",
      files: [
        { uploadId: "a", status: "processed", rowsRead: 9007199254740991, rowsProcessed: 0, output: "s3://x/" },
        { uploadId: "b", status: "failed", rowsRead: null, output: null, rejectedOutput: null, error: "bad" },
      ],
    });

    expect(parseRunStats(text, "k").files.map((f) => f.uploadId)).toEqual(["a", "b"]);
  });

  it("says which document is wrong: a manifest of the wrong format, or not an object", () => {
    expect(() => parseManifest(JSON.stringify({ format: "csv-ingest-stats/1" }), "m")).toThrow(
      new FormatError("m: manifest format is csv-ingest-stats/1, want csv-ingest-manifest/1"),
    );
    expect(() => parseManifest("null", "m")).toThrow(new FormatError("m: manifest is not an object"));
  });
});
