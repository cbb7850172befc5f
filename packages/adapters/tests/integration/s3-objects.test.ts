import { PutObjectCommand } from "@aws-sdk/client-s3";
import { buildManifest, parseManifest, toUpload } from "@ingest/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3Objects } from "../../src/s3-objects.js";
import { clients, createBucket, type Moto, startMoto } from "./moto.js";

let moto: Moto;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});

describe("S3Objects on moto", () => {
  it("heads the current version of a key (unicode, spaces) and answers null for a missing one", async () => {
    const { s3 } = clients(moto.endpoint);
    const bucket = await createBucket(s3);
    const objects = new S3Objects(s3);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "input/a b é.csv", Body: "id\n1\n" }));

    const head = await objects.head(bucket, "input/a b é.csv");

    expect(head).toMatchObject({ bucket, key: "input/a b é.csv", size: 5, versionId: null });
    expect(head?.etag).toMatch(/^"?[0-9a-f]{32}"?$/);
    expect(Number.isNaN(Date.parse(head?.lastModified ?? ""))).toBe(false);
    expect(await objects.head(bucket, "input/missing.csv")).toBeNull();
  });

  it("writes a manifest the reader parses back unchanged", async () => {
    const { s3 } = clients(moto.endpoint);
    const bucket = await createBucket(s3);
    const objects = new S3Objects(s3);
    const upload = toUpload({
      bucket,
      key: "input/x.csv",
      versionId: null,
      etag: "e",
      lastModified: "2026-04-01T10:00:00Z",
      size: 1,
    });
    const manifest = buildManifest({
      runKey: "r1",
      bucket,
      createdAt: new Date("2026-04-01T10:00:00Z"),
      uploads: [upload],
    });

    await objects.putJson(bucket, "manifests/r1.json", manifest);

    const text = await objects.getText(bucket, "manifests/r1.json");
    expect(parseManifest(text ?? "", "manifests/r1.json")).toEqual(manifest);
    expect(await objects.getText(bucket, "manifests/none.json")).toBeNull();
  });
});
