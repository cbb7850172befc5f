/** `ingest upload <files or folders>`: put them under input/, in parallel, with a progress bar. */
import { readFileSync, statSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { basename, join, relative, resolve, sep } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { INPUT_PREFIX, isInputKey } from "@ingest/core";
import { CliError } from "./errors.js";
import { Progress } from "./output.js";
import type { Target } from "./target.js";

export interface PlannedUpload {
  readonly file: string;
  readonly key: string;
  readonly size: number;
}

export interface UploadResult extends PlannedUpload {
  readonly etag: string | null;
  readonly versionId: string | null;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

/** The keys: a file → input/<prefix><name>; a folder's files → input/<prefix><path inside the folder>. */
export async function planUploads(paths: readonly string[], prefix = ""): Promise<PlannedUpload[]> {
  const cleanPrefix = prefix.replace(/^\/+/, "").replace(/([^/])$/, "$1/");
  const planned: PlannedUpload[] = [];
  for (const given of paths) {
    const abs = resolve(given);
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(abs);
    } catch {
      throw new CliError(`${given}: no such file or folder`);
    }
    const files = st.isDirectory()
      ? (await walk(abs)).map((f) => ({ f, rel: relative(abs, f) }))
      : [{ f: abs, rel: basename(abs) }];
    for (const { f, rel } of files) {
      planned.push({
        file: f,
        key: `${INPUT_PREFIX}${cleanPrefix}${rel.split(sep).join("/")}`,
        size: statSync(f).size,
      });
    }
  }
  if (planned.length === 0) throw new CliError(`nothing to upload in ${paths.join(", ")}`);
  const keys = new Set<string>();
  for (const p of planned) {
    if (keys.has(p.key)) throw new CliError(`two files would be uploaded as ${p.key}`);
    keys.add(p.key);
  }
  return planned;
}

export const ignoredByPipeline = (p: PlannedUpload) => !isInputKey(p.key);

export async function uploadFiles(
  target: Target,
  planned: readonly PlannedUpload[],
  opts: { concurrency?: number; progress?: boolean } = {},
): Promise<UploadResult[]> {
  const progress = new Progress("uploading", planned.length, opts.progress ?? true);
  const results: UploadResult[] = new Array(planned.length);
  let next = 0;
  let done = 0;
  progress.update(0);
  const worker = async () => {
    while (next < planned.length) {
      const i = next++;
      const p = planned[i];
      if (!p) continue;
      const r = await target.s3.send(
        new PutObjectCommand({
          Bucket: target.bucket,
          Key: p.key,
          Body: readFileSync(p.file),
          ContentType: "text/csv",
        }),
      );
      results[i] = { ...p, etag: r.ETag?.replaceAll('"', "") ?? null, versionId: r.VersionId ?? null };
      progress.update(++done);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 16, planned.length) }, worker));
  } finally {
    progress.done();
  }
  return results;
}
