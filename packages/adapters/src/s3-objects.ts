import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import type { ListedObject, ObjectLister, ObjectStore, ObjectVersion } from "@ingest/core";

function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  return err?.name === "NotFound" || err?.name === "NoSuchKey" || err?.$metadata?.httpStatusCode === 404;
}

export class S3Objects implements ObjectStore, ObjectLister {
  constructor(private readonly s3: S3Client) {}

  async head(bucket: string, key: string): Promise<ObjectVersion | null> {
    try {
      const r = await this.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return {
        bucket,
        key,
        versionId: r.VersionId ?? null,
        etag: r.ETag ?? "",
        lastModified: (r.LastModified ?? new Date(0)).toISOString(),
        size: r.ContentLength ?? 0,
      };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async putJson(bucket: string, key: string, doc: unknown): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: JSON.stringify(doc, null, 2),
        ContentType: "application/json",
      }),
    );
  }

  async getText(bucket: string, key: string): Promise<string | null> {
    try {
      const r = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return (await r.Body?.transformToString("utf-8")) ?? "";
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /** One ListObjectsV2 request: StartAfter is the whole position (no continuation token to keep). */
  async listAfter(bucket: string, prefix: string, startAfter: string | null, maxKeys: number) {
    const r = await this.s3.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        MaxKeys: maxKeys,
        ...(startAfter === null ? {} : { StartAfter: startAfter }),
      }),
    );
    const objects: ListedObject[] = (r.Contents ?? []).map((o) => ({
      key: o.Key ?? "",
      etag: o.ETag ?? "",
      lastModified: (o.LastModified ?? new Date(0)).toISOString(),
      size: o.Size ?? 0,
    }));
    return { objects, truncated: r.IsTruncated === true };
  }
}
