/**
 * Uploaded keys are untrusted (issue 12): the output folder a key gets is safe and injective for every legal key,
 * and `.csv` in any case is an upload. Property tests (fast-check) over arbitrary keys, plus named cases.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isInputKey, objectCreatedPattern, PROCESSED_PREFIX, REJECTED_PREFIX } from "../../src/config/pipeline.js";
import { buildManifest } from "../../src/manifest/format.js";
import { MAX_OUTPUT_NAME_BYTES, toUpload, uploadOutputName } from "../../src/upload/identity.js";

const TAG = "20260401T100000Z-abc";
const name = (key: string, versionTag = TAG) => uploadOutputName({ key, versionTag });

/** Keys an attacker would try: S3 allows any UTF-8 up to 1,024 bytes; we bias towards the dangerous pieces. */
const piece = fc.oneof(
  fc.constantFrom("", ".", "..", "_staging", "_temporary", "rejected", "stats", "v=1", "%", "%2F", "%2E", "=", ":"),
  fc.constantFrom(".csv", ".CSV", ".Csv", "a.csv", "_SUCCESS", "~", "%7E", " ", "\n", "\u001b[31m", "é", "\u0000"),
  fc.string({ maxLength: 6 }),
  fc.string({ unit: "binary", maxLength: 4 }),
);
const inputKey = fc
  .tuple(
    fc.array(fc.tuple(piece, fc.constantFrom("/", "", "//")), { maxLength: 6 }),
    fc.constantFrom(".csv", ".CSV", ".cSv", ".csv.CSV", ".CSV.csv"),
  )
  .map(([parts, suffix]) => `input/${parts.map(([p, sep]) => p + sep).join("")}${suffix}`)
  .filter((key) => Buffer.byteLength(key) <= 1024);

/** Percent-decoding as the encoding defines it (the inverse the injectivity argument relies on). */
const decode = (segment: string) => decodeURIComponent(segment);

describe("uploadOutputName", () => {
  it("never has an empty, `.` or `..` segment, nor a hidden (`_`/`.`-prefixed) folder", () => {
    fc.assert(
      fc.property(inputKey, (key) => {
        for (const segment of name(key).split("/")) {
          expect(segment).not.toBe("");
          expect(segment.startsWith(".")).toBe(false);
          expect(segment.startsWith("_")).toBe(false);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("is injective: two different keys (or versions) never share a folder", () => {
    fc.assert(
      fc.property(inputKey, inputKey, (a, b) => {
        fc.pre(a !== b);
        expect(name(a)).not.toBe(name(b));
      }),
      { numRuns: 1500 },
    );
    expect(name("input/a.csv", "T1")).not.toBe(name("input/a.csv", "T2"));
  });

  it("never puts one upload's tree inside another's, nor inside the pipeline's own trees", () => {
    fc.assert(
      fc.property(inputKey, inputKey, (a, b) => {
        fc.pre(a !== b);
        const [pa, pb] = [buildPrefixes(a), buildPrefixes(b)];
        for (const x of Object.values(pa)) for (const y of Object.values(pb)) expect(y.startsWith(x)).toBe(false);
        for (const own of ["rejected/", "stats/", "processed/_staging/", "processed/_temporary/"]) {
          expect(pa.outputPrefix.startsWith(own)).toBe(false);
        }
        expect(pa.outputPrefix.startsWith(PROCESSED_PREFIX)).toBe(true);
        expect(pa.rejectedPrefix.startsWith(REJECTED_PREFIX)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it("keeps names under the length budget, so output keys stay under S3's 1,024 bytes", () => {
    fc.assert(
      fc.property(inputKey, (key) => {
        expect(Buffer.byteLength(name(key).replace(/\/v=[^/]*$/, ""))).toBeLessThanOrEqual(MAX_OUTPUT_NAME_BYTES);
      }),
    );
    const long = `input/${"%".repeat(1000)}.csv`;
    expect(name(long)).toMatch(/^%7E[0-9a-f]{64}\/v=/);
    expect(name(long)).not.toBe(name(`input/${"%".repeat(999)}.csv`));
  });

  it("decodes back to the key's segments (the documented encoding)", () => {
    fc.assert(
      fc.property(inputKey, (key) => {
        const stem = name(key).replace(/\/v=[^/]*$/, "");
        fc.pre(!stem.startsWith("%7E") && key.endsWith(".csv"));
        const segments = stem.split("/").map((s) => (s === "%2F" ? "" : decode(s)));
        expect(segments.join("/")).toBe(key.slice("input/".length, -".csv".length));
      }),
      { numRuns: 1000 },
    );
  });

  it.each([
    ["input/sales/a b.csv", "sales/a b"],
    ["input/x/../escape/a.csv", "x/%2E./escape/a"],
    ["input/./a.csv", "%2E/a"],
    ["input/a//b.csv", "a/%2F/b"],
    ["input//a.csv", "%2F/a"],
    ["input/rejected/a.csv", "rejected/a"],
    ["input/stats/a.csv", "stats/a"],
    ["input/_staging/r/a.csv", "%5Fstaging/r/a"],
    ["input/a/v=1/b.csv", "a/v%3D1/b"],
    ["input/a.CSV", "a%2ECSV"],
    ["input/a.CSV.csv", "a.CSV"],
    ["input/x/.csv", "x/%2F"],
    ["input/50%.csv", "50%25"],
    ["input/c:\\evil.csv", "c%3A%5Cevil"],
    ["input/\u001b[31mred.csv", "%1B%5B31mred"],
    ["input/sales 2025/é.csv", "sales 2025/é"],
    ["input/\u202egnp.exe.csv", "%E2%80%AEgnp.exe"],
    ["input/a\u0085b\u007f.csv", "a%C2%85b%7F"],
  ])("%s → processed/%s/v=…", (key, expected) => {
    expect(name(key)).toBe(`${expected}/v=${TAG}`);
  });
});

function buildPrefixes(key: string) {
  const upload = toUpload({
    bucket: "b",
    key,
    versionId: null,
    etag: "abc",
    lastModified: "2026-04-01T10:00:00Z",
    size: 1,
  });
  const [entry] = buildManifest({ runKey: "r", bucket: "b", createdAt: new Date(0), uploads: [upload] }).uploads;
  if (!entry) throw new Error("no entry");
  return { outputPrefix: entry.outputPrefix, rejectedPrefix: entry.rejectedPrefix };
}

describe(".csv in any case", () => {
  it.each(["input/a.csv", "input/a.CSV", "input/a.Csv", "input/sub/B.cSV"])("%s is an upload", (key) => {
    expect(isInputKey(key)).toBe(true);
  });

  it.each(["input/a.csvx", "input/a.txt", "Input/a.CSV", "other/a.CSV"])("%s is not", (key) => {
    expect(isInputKey(key)).toBe(false);
  });

  it("routes every casing by wildcard entries that EventBridge ORs, and each entry is prefix AND suffix", () => {
    const entries = objectCreatedPattern("b").detail.object.key;
    expect(entries).toHaveLength(8);
    expect(entries).toContainEqual({ wildcard: "input/*.csv" });
    expect(entries).toContainEqual({ wildcard: "input/*.CSV" });
    expect(entries).toContainEqual({ wildcard: "input/*.cSv" });
    // The pattern and isInputKey agree on every casing.
    for (const { wildcard } of entries) {
      expect(wildcard.startsWith("input/*")).toBe(true);
      expect(isInputKey(wildcard.replace("*", "x"))).toBe(true);
    }
  });
});
