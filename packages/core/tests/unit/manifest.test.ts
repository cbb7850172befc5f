import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildManifest, FormatError, parseManifest, parseRunStats } from "../../src/manifest/format.js";
import { toUpload } from "../../src/upload/identity.js";

const vector = (name: string) => readFileSync(new URL(`../../src/manifest/examples/${name}`, import.meta.url), "utf8");

describe("manifest format (shared test vector with glue/)", () => {
  it("builds exactly manifest.v1.json from the uploads it lists", () => {
    const expected = JSON.parse(vector("manifest.v1.json"));
    const uploads = expected.uploads.map(
      (u: { key: string; versionId: string | null; etag: string; lastModified: string; size: number }) =>
        toUpload({
          bucket: expected.bucket,
          key: u.key,
          versionId: u.versionId,
          etag: u.etag,
          lastModified: u.lastModified,
          size: u.size,
        }),
    );

    const manifest = buildManifest({
      runKey: expected.runKey,
      bucket: expected.bucket,
      createdAt: new Date(expected.createdAt),
      uploads,
    });

    expect(manifest).toEqual(expected);
    expect(parseManifest(vector("manifest.v1.json"), "vector")).toEqual(expected);
  });

  it("reads stats.v1.json", () => {
    const stats = parseRunStats(vector("stats.v1.json"), "vector");
    expect(stats.files.map((f) => [f.key, f.status])).toEqual([
      ["input/sales 2025/é.csv", "processed"],
      ["input/customers.csv", "failed"],
    ]);
    expect(stats.totals.rowsRead).toBe(
      stats.totals.rowsProcessed + stats.totals.rowsRejected + stats.totals.duplicatesRemoved,
    );
  });

  it.each([
    ["not JSON", "{", /s3:\/\/b\/k: stats is not JSON/],
    ["not an object", "42", /stats is not an object/],
    ["another format", JSON.stringify({ format: "x/1", files: [] }), /stats format is x\/1, want csv-ingest-stats\/1/],
    ["no files", JSON.stringify({ format: "csv-ingest-stats/1" }), /stats has no files list/],
    [
      "a bad status",
      JSON.stringify({ format: "csv-ingest-stats/1", files: [{ uploadId: "u", status: "done" }] }),
      /files\[0\] has no uploadId or a bad status/,
    ],
  ])("rejects stats that are %s, naming where", (_name, text, message) => {
    expect(() => parseRunStats(text, "s3://b/k")).toThrow(FormatError);
    expect(() => parseRunStats(text, "s3://b/k")).toThrow(message);
  });

  it("rejects a manifest without uploads", () => {
    expect(() => parseManifest(JSON.stringify({ format: "csv-ingest-manifest/1" }), "m")).toThrow(
      /m: manifest has no uploads list/,
    );
  });
});
