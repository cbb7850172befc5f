/** S3Objects' reading of S3's answers, with the SDK client mocked: which errors mean "not there", and empty fields. */
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { S3Objects } from "../../src/s3-objects.js";

const s3 = mockClient(S3Client);
const objects = () => new S3Objects(new S3Client({ region: "us-east-1" }));
const error = (name: string, status?: number) =>
  Object.assign(new Error(name), { name, ...(status ? { $metadata: { httpStatusCode: status } } : {}) });

beforeEach(() => {
  s3.reset();
});

describe("S3Objects", () => {
  it.each([
    ["NotFound without a status", error("NotFound")],
    ["NoSuchKey without a status", error("NoSuchKey")],
    ["any 404", error("UnknownError", 404)],
  ])("reads %s as a missing object (head and getText answer null)", async (_, e) => {
    s3.on(HeadObjectCommand).rejects(e);
    s3.on(GetObjectCommand).rejects(e);

    expect(await objects().head("b", "input/a.csv")).toBeNull();
    expect(await objects().getText("b", "manifests/r1.json")).toBeNull();
  });

  it("throws any other failure (access denied is not 'missing')", async () => {
    s3.on(HeadObjectCommand).rejects(error("Forbidden", 403));
    s3.on(GetObjectCommand).rejects(error("AccessDenied", 403));

    await expect(objects().head("b", "input/a.csv")).rejects.toThrow("Forbidden");
    await expect(objects().getText("b", "manifests/r1.json")).rejects.toThrow("AccessDenied");
  });

  it("heads a key: version id, etag as S3 gives it, last-modified, size", async () => {
    s3.on(HeadObjectCommand).resolves({
      VersionId: "v1",
      ETag: '"abc"',
      LastModified: new Date("2026-04-01T10:00:00Z"),
      ContentLength: 42,
    });

    expect(await objects().head("b", "input/a.csv")).toEqual({
      bucket: "b",
      key: "input/a.csv",
      versionId: "v1",
      etag: '"abc"',
      lastModified: "2026-04-01T10:00:00.000Z",
      size: 42,
    });
    expect(s3.commandCalls(HeadObjectCommand)[0]?.args[0].input).toEqual({ Bucket: "b", Key: "input/a.csv" });
  });

  it("fills what a head or a listing leaves out with empty values", async () => {
    s3.on(HeadObjectCommand).resolves({});
    s3.on(ListObjectsV2Command).resolves({ Contents: [{}] });
    s3.on(GetObjectCommand).resolves({});

    expect(await objects().head("b", "k")).toEqual({
      bucket: "b",
      key: "k",
      versionId: null,
      etag: "",
      lastModified: "1970-01-01T00:00:00.000Z",
      size: 0,
    });
    expect(await objects().listAfter("b", "input/", null, 5)).toEqual({
      objects: [{ key: "", etag: "", lastModified: "1970-01-01T00:00:00.000Z", size: 0 }],
      truncated: false,
    });
    expect(await objects().getText("b", "k")).toBe("");
  });

  it("lists nothing when S3 sends no Contents (an empty prefix, or nothing after StartAfter)", async () => {
    s3.on(ListObjectsV2Command).resolves({ KeyCount: 0, IsTruncated: false });
    expect(await objects().listAfter("b", "input/", "input/z.csv", 5)).toEqual({ objects: [], truncated: false });
  });

  it("passes on a failure that carries no HTTP status (a dropped connection) as it is", async () => {
    const reset = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    s3.on(HeadObjectCommand).rejects(reset);
    s3.on(GetObjectCommand).rejects(reset);
    await expect(objects().head("b", "k")).rejects.toBe(reset);
    await expect(objects().getText("b", "k")).rejects.toBe(reset);
  });

  it("lists one page: StartAfter only when given, truncated only when S3 says so", async () => {
    s3.on(ListObjectsV2Command).resolves({
      Contents: [{ Key: "input/b.csv", ETag: '"e"', LastModified: new Date("2026-04-01T10:00:00Z"), Size: 3 }],
      IsTruncated: true,
    });

    const page = await objects().listAfter("b", "input/", "input/a.csv", 1);
    await objects().listAfter("b", "input/", null, 1000);

    expect(page).toEqual({
      objects: [{ key: "input/b.csv", etag: '"e"', lastModified: "2026-04-01T10:00:00.000Z", size: 3 }],
      truncated: true,
    });
    expect(s3.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input)).toEqual([
      { Bucket: "b", Prefix: "input/", MaxKeys: 1, StartAfter: "input/a.csv" },
      { Bucket: "b", Prefix: "input/", MaxKeys: 1000 },
    ]);
  });

  it("writes a document as indented JSON, typed application/json", async () => {
    s3.on(PutObjectCommand).resolves({});

    await objects().putJson("b", "manifests/r1.json", { format: "x", uploads: [1] });

    expect(s3.commandCalls(PutObjectCommand)[0]?.args[0].input).toEqual({
      Bucket: "b",
      Key: "manifests/r1.json",
      Body: '{\n  "format": "x",\n  "uploads": [\n    1\n  ]\n}',
      ContentType: "application/json",
    });
  });

  it("reads a document as UTF-8 text", async () => {
    let encoding: string | undefined;
    const body = {
      transformToString: async (e?: string) => {
        encoding = e;
        return "é";
      },
    };
    // biome-ignore lint/suspicious/noExplicitAny: a minimal stand-in for the SDK's streaming payload
    s3.on(GetObjectCommand).resolves({ Body: body as any });

    expect(await objects().getText("b", "manifests/r1.json")).toBe("é");
    expect(encoding).toBe("utf-8");
    expect(s3.commandCalls(GetObjectCommand)[0]?.args[0].input).toEqual({ Bucket: "b", Key: "manifests/r1.json" });
  });
});
