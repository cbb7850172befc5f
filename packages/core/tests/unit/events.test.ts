import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { candidateKeys, parseObjectCreated } from "../../src/upload/events.js";

const golden = (name: string) => readFileSync(new URL(`../events/${name}`, import.meta.url), "utf8");

describe("parseObjectCreated", () => {
  it("reads AWS's shape (etag, ISO time, version-id) with an unencoded unicode key", () => {
    const p = parseObjectCreated(golden("s3-object-created.aws.json"), "data-bucket");
    expect(p).toEqual({
      kind: "object-created",
      event: {
        bucket: "data-bucket",
        key: "input/sales 2025/été+Q1.csv",
        etag: "b1946ac92492d2347c6235b4d2611184",
        versionId: "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        size: 5,
        time: "2021-11-12T00:00:00Z",
        sequencer: "00617F08299329D189",
      },
    });
  });

  it("reads the emulator's shape (eTag, epoch time, null version-id)", () => {
    const p = parseObjectCreated(golden("s3-object-created.moto.json"), "data-bucket");
    expect(p).toMatchObject({
      kind: "object-created",
      event: { etag: "9e107d9d372bb6826bd81d3542a419d6", versionId: null, time: "2026-04-01T09:59:12.000Z" },
    });
  });

  const ignoredCases: [string, string, RegExp][] = [
    ["broken JSON", "{not json", /not JSON/],
    ["an S3 test event", JSON.stringify({ Service: "Amazon S3", Event: "s3:TestEvent" }), /test event/],
    ["another source", JSON.stringify({ source: "aws.ec2", "detail-type": "Object Created" }), /source is aws.ec2/],
    [
      "Object Tags Added",
      JSON.stringify({ source: "aws.s3", "detail-type": "Object Tags Added", detail: {} }),
      /detail-type/,
    ],
    [
      "no key",
      JSON.stringify({
        source: "aws.s3",
        "detail-type": "Object Created",
        detail: { bucket: { name: "data-bucket" } },
      }),
      /no bucket name or object key/,
    ],
  ];
  it.each(ignoredCases)("ignores %s with a reason", (_name, body, reason) => {
    const p = parseObjectCreated(body, "data-bucket");
    expect(p.kind).toBe("ignored");
    expect(p.kind === "ignored" && p.reason).toMatch(reason);
  });

  it.each([
    ["input/a.txt", /not under input\/ with .csv/],
    ["other/a.csv", /not under input\/ with .csv/],
  ])("ignores key %s", (key, reason) => {
    const event = JSON.parse(golden("s3-object-created.aws.json"));
    event.detail.object.key = key;
    const p = parseObjectCreated(JSON.stringify(event), "data-bucket");
    expect(p.kind === "ignored" && p.reason).toMatch(reason);
  });

  it("ignores another bucket", () => {
    const p = parseObjectCreated(golden("s3-object-created.aws.json"), "other-bucket");
    expect(p.kind === "ignored" && p.reason).toMatch(/bucket data-bucket is not other-bucket/);
  });
});

describe("candidateKeys", () => {
  it("tries the key as given, then URL-decoded", () => {
    expect(candidateKeys("input/a+b%C3%A9.csv")).toEqual(["input/a+b%C3%A9.csv", "input/a bé.csv"]);
    expect(candidateKeys("input/plain.csv")).toEqual(["input/plain.csv"]);
    expect(candidateKeys("input/100%.csv")).toEqual(["input/100%.csv"]);
  });
});
