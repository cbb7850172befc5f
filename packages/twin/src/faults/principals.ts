/**
 * Who calls AWS in the twin. Each principal gets its own fake access key id (as each Lambda, the Glue service and
 * the job have their own role on AWS); the proxy reads it back from the SigV4 Authorization header
 * (`Credential=<akid>/<date>/<region>/<service>/aws4_request`) to name the caller in the call record.
 */

export const PRINCIPALS = ["batcher", "recorder", "sweeper", "reconciler", "glue-job", "glue-service"] as const;
export type Principal = (typeof PRINCIPALS)[number] | "unknown";

/** `batcher` → `AKIDBATCHER`, `glue-job` → `AKIDGLUEJOB`. */
export function accessKeyOf(principal: Principal): string {
  return `AKID${principal.replace(/[^a-z]/gi, "").toUpperCase()}`;
}

export function credentialsOf(principal: Principal): { accessKeyId: string; secretAccessKey: string } {
  return { accessKeyId: accessKeyOf(principal), secretAccessKey: "twin" };
}

const byKey = new Map<string, Principal>(PRINCIPALS.map((p) => [accessKeyOf(p), p]));

/** The principal behind an access key id (`unknown` for any other key, e.g. the CLI's `twin`). */
export function principalOfKey(accessKeyId: string | undefined): Principal {
  return (accessKeyId && byKey.get(accessKeyId)) || "unknown";
}

/** From a SigV4 Authorization header (or a presigned URL's X-Amz-Credential): the access key id and the service. */
export function parseCredential(value: string | undefined): { accessKeyId: string; service: string } | null {
  if (!value) return null;
  const m = /Credential=([^/,\s]+)\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(value);
  if (m?.[1] && m[2]) return { accessKeyId: m[1], service: m[2] };
  const q = /^([^/]+)\/\d{8}\/[^/]+\/([^/]+)\/aws4_request$/.exec(value);
  if (q?.[1] && q[2]) return { accessKeyId: q[1], service: q[2] };
  return null;
}
