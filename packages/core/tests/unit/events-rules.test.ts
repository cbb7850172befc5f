/** parseObjectCreated's edge cases (events.ts): every field's fallback, the reasons it ignores a message for. */
import { describe, expect, it } from "vitest";
import { compareSequencers, parseObjectCreated } from "../../src/upload/events.js";

function body(object: Record<string, unknown>, top: Record<string, unknown> = {}) {
  return JSON.stringify({
    source: "aws.s3",
    "detail-type": "Object Created",
    time: "2026-04-01T10:00:00Z",
    detail: { bucket: { name: "data-bucket" }, object: { key: "input/a.csv", ...object } },
    ...top,
  });
}

describe("parseObjectCreated: edge cases", () => {
  it.each([
    ["JSON null", "null", "body is not an object"],
    ["a JSON number", "5", "body is not an object"],
    ["an S3 test event", JSON.stringify({ Event: "s3:TestEvent", source: "aws.s3" }), "S3 test event"],
    ["no source", JSON.stringify({ "detail-type": "Object Created" }), "source is undefined, not aws.s3"],
    [
      "another detail-type",
      body({}, { "detail-type": "Object Deleted" }),
      "detail-type is Object Deleted, not Object Created",
    ],
    [
      "no bucket name",
      body({}, { detail: { object: { key: "input/a.csv" } } }),
      "event has no bucket name or object key",
    ],
    ["a key that is not a string", body({ key: 7 }), "event has no bucket name or object key"],
    [
      "another bucket",
      body({}, { detail: { bucket: { name: "b2" }, object: { key: "input/a.csv" } } }),
      "bucket b2 is not data-bucket",
    ],
    ["a key outside input/", body({ key: "out/a.csv" }), "key out/a.csv is not under input/ with .csv"],
  ])("ignores %s, saying why", (_, text, reason) => {
    expect(parseObjectCreated(text, "data-bucket")).toEqual({ kind: "ignored", reason });
  });

  it("accepts a URL-encoded key whose decoded form is an input key", () => {
    expect(parseObjectCreated(body({ key: "input%2Fa+b.csv" }), "data-bucket")).toMatchObject({
      kind: "object-created",
      event: { key: "input%2Fa+b.csv" },
    });
  });

  it("fills what the event leaves out: no etag, version, size or sequencer; a time of another type", () => {
    expect(parseObjectCreated(body({}, { time: { at: 1 } }), "data-bucket")).toEqual({
      kind: "object-created",
      event: {
        bucket: "data-bucket",
        key: "input/a.csv",
        etag: null,
        versionId: null,
        size: null,
        time: "1970-01-01T00:00:00.000Z",
        sequencer: null,
      },
    });
  });

  it("takes the emulator's eTag, epoch seconds, a numeric size; keeps only a hex sequencer", () => {
    expect(
      parseObjectCreated(body({ eTag: "abc", size: 3, sequencer: "0A1b" }, { time: 1775037600 }), "data-bucket"),
    ).toMatchObject({
      event: { etag: "abc", size: 3, time: "2026-04-01T10:00:00.000Z", sequencer: "0A1b" },
    });
    expect(parseObjectCreated(body({ size: "3", sequencer: "0x1z" }), "data-bucket")).toMatchObject({
      event: { size: null, sequencer: null },
    });
    expect(parseObjectCreated(body({ sequencer: "" }), "data-bucket")).toMatchObject({ event: { sequencer: null } });
    expect(parseObjectCreated(body({ sequencer: "x0A" }), "data-bucket")).toMatchObject({ event: { sequencer: null } });
    expect(parseObjectCreated(body({ sequencer: 123 }), "data-bucket")).toMatchObject({ event: { sequencer: null } });
    expect(parseObjectCreated(body({ etag: "e", eTag: "other" }), "data-bucket")).toMatchObject({
      event: { etag: "e" },
    });
  });
});

describe("compareSequencers", () => {
  it.each([
    ["0A", "0B", -1],
    ["0B", "0A", 1],
    ["0a", "0A", 0],
    ["0A", "0A00", 0],
    ["0A00", "0A", 0],
    ["0A01", "0A", 1],
    ["0A", "0A01", -1],
  ])("%s vs %s → %d", (a, b, want) => {
    expect(Math.sign(compareSequencers(a, b))).toBe(want);
  });
});
