import { describe, expect, it } from "vitest";
import { normalizeEtag, toUpload, uploadOutputName } from "../../src/upload/identity.js";

const base = {
  bucket: "b",
  key: "input/sales/a b.csv",
  versionId: null,
  etag: '"abc"',
  lastModified: "2026-04-01T10:00:00Z",
  size: 3,
};

describe("upload identity", () => {
  it("is key + last-modified + etag when the bucket is not versioned", () => {
    const u = toUpload(base);
    expect(u.versionTag).toBe("20260401T100000Z-abc");
    expect(u.uploadId).toBe("b/input/sales/a b.csv@20260401T100000Z-abc");
  });

  it("uses the version id when S3 gives one, and ignores S3's literal 'null'", () => {
    expect(toUpload({ ...base, versionId: "v1.x" }).versionTag).toBe("20260401T100000Z-v1.x");
    expect(toUpload({ ...base, versionId: "null" }).versionTag).toBe("20260401T100000Z-abc");
  });

  it("tells a re-upload of identical bytes apart by its new last-modified", () => {
    const again = toUpload({ ...base, lastModified: "2026-04-01T10:00:01Z" });
    expect(again.uploadId).not.toBe(toUpload(base).uploadId);
  });

  it("derives the output folder from the key", () => {
    expect(uploadOutputName(toUpload(base))).toBe("sales/a b/v=20260401T100000Z-abc");
  });

  it("strips quotes and weak markers from etags", () => {
    expect(normalizeEtag('W/"x-2"')).toBe("x-2");
  });

  it("rejects a last-modified that is not a time", () => {
    expect(() => toUpload({ ...base, lastModified: "yesterday" })).toThrow(/not a time: yesterday/);
  });
});
