/**
 * Least privilege proven by traffic (issue 12): the calls of call records, checked against the policies this app
 * gives each caller's role. Every call must be allowed; every grant no call used must be one of the listed,
 * explained ones (docs/notes/security.md has the table). The records, in the twin's format:
 * - fixtures/calls.twin.jsonl, hand-written: the calls of an upload → run → record → sweep cycle (the hostile-input
 *   e2e test checks the twin's real record of its own run the same way);
 * - fixtures/calls.glue-job.jsonl, recorded: every S3 call the Glue job itself made in a run on moto S3 (driver and
 *   Spark workers), written and kept current by glue/tests/test_job_s3_calls.py (it fails when the job's calls
 *   differ from this file).
 */
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type EvaluatedApp, evaluateApp } from "./helpers/app";
import {
  type CallLine,
  checkTraffic,
  explained,
  parseCalls,
  unusedListPrefixes,
  withRoleStatements,
} from "./helpers/traffic";

let app: EvaluatedApp;
beforeAll(async () => {
  app = await evaluateApp("dev");
});

const read = (name: string) => parseCalls(fs.readFileSync(path.join(import.meta.dirname, "fixtures", name), "utf8"));
const fixture = () => read("calls.twin.jsonl");
const jobRecord = () => read("calls.glue-job.jsonl");

describe("least privilege, proven by the twin's calls", () => {
  it("allows every call of the record under the caller's role (the twin's own stand-ins excepted, with reasons)", () => {
    const report = checkTraffic(app, fixture());
    expect(report.unmapped).toEqual([]);
    expect(report.denied).toEqual([]);
    expect(report.checked).toBe(45);
    expect(report.twinOnly).toBe(2);
    expect(report.notPipeline).toBe(1);
  });

  it("leaves no grant unused by the twin's and the job's records but the listed ones, each with its call on AWS", () => {
    const report = checkTraffic(app, [...fixture(), ...jobRecord()]);
    const unexplained = report.unused.filter((g) => !explained(g));
    expect(unexplained).toEqual([]);
    console.info(
      `grants used by the record:\n${report.used.map((g) => `  ${g.role} ${g.action} ${g.resource} ← ${g.call}`).join("\n")}\n` +
        `grants the record did not use (explained):\n${report.unused.map((g) => `  ${g.role} ${g.action} ${g.resource}`).join("\n")}`,
    );
  });

  it("flags a call outside a role's grants: a batcher write to processed/ or manifests/, a batcher reading a run, a lease on the other queue", () => {
    const bad: CallLine[] = [
      {
        t: "",
        principal: "batcher",
        service: "s3",
        action: "s3:PutObject",
        resources: ["arn:aws:s3:::csv-ingest-local-data/processed/x/v=1/p.csv"],
        outcome: "ok",
      },
      {
        t: "",
        principal: "batcher",
        service: "glue",
        action: "glue:GetJobRun",
        resources: ["arn:aws:glue:us-east-1:123456789012:job/csv-ingest-local-ingest-job"],
        outcome: "ok",
      },
      {
        t: "",
        principal: "batcher",
        service: "s3",
        action: "s3:PutObject",
        resources: ["arn:aws:s3:::csv-ingest-local-data/manifests/r.json"],
        outcome: "ok",
      },
      // a crash lease on the other consumer's queue
      {
        t: "",
        principal: "batcher",
        service: "sqs",
        action: "sqs:ChangeMessageVisibility",
        resources: ["arn:aws:sqs:us-east-1:123456789012:csv-ingest-local-recorder"],
        outcome: "ok",
      },
      {
        t: "",
        principal: "recorder",
        service: "sqs",
        action: "sqs:ChangeMessageVisibility",
        resources: ["arn:aws:sqs:us-east-1:123456789012:csv-ingest-local-ingest"],
        outcome: "ok",
      },
    ];
    const report = checkTraffic(app, bad);
    expect(report.denied.map((d) => `${d.principal} ${d.action} ${d.resource.replace(/^.*:::[^/]*\//, "")}`)).toEqual([
      "batcher s3:PutObject processed/x/v=1/p.csv",
      `batcher glue:GetJobRun arn:aws:glue:us-east-1:123456789012:job/${app.outputs.glueJobName}`,
      "batcher s3:PutObject manifests/r.json",
      expect.stringMatching(/^batcher sqs:ChangeMessageVisibility arn:aws:sqs:.*RecorderQueue/),
      expect.stringMatching(/^recorder sqs:ChangeMessageVisibility arn:aws:sqs:.*IngestQueue/),
    ]);
  });

  it("names a principal the app has no role for", () => {
    const report = checkTraffic(app, [
      { t: "", principal: "stranger", service: "s3", action: "s3:GetObject", resources: ["*"], outcome: "ok" },
    ]);
    expect(report.unmapped).toEqual(["stranger"]);
  });
});

describe("least privilege, proven by the Glue job's own S3 calls (recorded on moto)", () => {
  const data = () => `arn:aws:s3:::${app.outputs.bucketName}`;
  const control = () => `arn:aws:s3:::${app.outputs.controlBucketName}`;
  const short = (resource: string) =>
    resource
      .replace(data(), "data")
      .replace(control(), "control")
      .replace(/^arn:aws:logs:.*:log-group:/, "logs:");

  it("is a record of every path the job has: batched and split uploads, multipart, clearing leftovers, failures", () => {
    const calls = jobRecord();
    expect(new Set(calls.map((c) => c.principal))).toEqual(new Set(["glue-job"]));
    expect(new Set(calls.map((c) => c.api))).toEqual(
      new Set([
        "GetObject",
        "ListObjectsV2",
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "DeleteObjects",
      ]),
    );
    expect(new Set(calls.map((c) => c.outcome))).toEqual(
      new Set(["ok", "error:PreconditionFailed", "error:NoSuchKey"]),
    );
    expect(calls.filter((c) => c.action === "s3:ListBucket").every((c) => c.context?.["s3:prefix"])).toBe(true);
  });

  it("allows every call the job made under the Glue role", () => {
    const report = checkTraffic(app, jobRecord());
    expect(report.unmapped).toEqual([]);
    expect(report.denied).toEqual([]);
    expect(report.checked).toBe(jobRecord().reduce((n, c) => n + c.resources.length, 0));
  });

  it("uses every S3 grant of the Glue role but the explained ones (Glue loading the code, an aborted multipart)", () => {
    const report = checkTraffic(app, jobRecord());
    const used = report.used.map((g) => `${g.action} ${short(g.resource)}`).sort();
    expect(used).toEqual(
      [
        "s3:GetObject data/input/*",
        "s3:GetObject control/manifests/*",
        "s3:ListBucket data",
        ...["processed", "parquet", "rejected", "stats/runs", "stats/files"].map((p) => `s3:PutObject data/${p}/*`),
        ...["processed", "parquet", "rejected"].map((p) => `s3:DeleteObject data/${p}/*`),
      ].sort(),
    );
    const unused = report.unused.map((g) => `${g.action} ${short(g.resource)}`).sort();
    expect(unused).toEqual(
      [
        "s3:GetObject control/glue-assets/*",
        ...["processed", "parquet", "rejected"].map((p) => `s3:AbortMultipartUpload data/${p}/*`),
        ...["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"].flatMap((a) => [
          `${a} logs:/aws-glue/*`,
          `${a} logs:/aws-glue/*:*`,
        ]),
        "cloudwatch:PutMetricData *",
      ].sort(),
    );
    expect(report.unused.filter((g) => !explained(g))).toEqual([]);
    console.info(
      `the Glue job's grants and the calls that need them:\n${report.used.map((g) => `  ${g.action} ${short(g.resource)} ← ${g.call}`).join("\n")}`,
    );
  });

  it("lists every prefix its ListBucket grant names, but input/ (a GET of a deleted upload: 404, not 403)", () => {
    expect(unusedListPrefixes(app, jobRecord())).toEqual([{ role: "glue-job", bucket: data(), prefix: "input/*" }]);
  });

  it("fails when a grant the job needs is removed: DeleteObject, or the listing of parquet/", () => {
    const noDelete = withRoleStatements(app, "glue-job", (statements) =>
      statements.map((s) => ({ ...s, Action: [s.Action ?? []].flat().filter((a) => a !== "s3:DeleteObject") })),
    );
    expect(checkTraffic(noDelete, jobRecord()).denied.map((d) => `${d.action} ${short(d.resource)}`)).toEqual([
      "s3:DeleteObject data/parquet/ingest_date=2026-11-30/c/v=V3/part-00001.parquet",
      "s3:DeleteObject data/processed/sales/b/v=V2/part-00007.csv",
      "s3:DeleteObject data/rejected/big/v=V8/part-00003.csv",
    ]);
    const noParquetListing = withRoleStatements(app, "glue-job", (statements) =>
      statements.map((s) =>
        s.Condition?.StringLike?.["s3:prefix"]
          ? {
              ...s,
              Condition: {
                StringLike: {
                  "s3:prefix": [s.Condition.StringLike["s3:prefix"]].flat().filter((p) => p !== "parquet/*"),
                },
              },
            }
          : s,
      ),
    );
    const denied = checkTraffic(noParquetListing, jobRecord()).denied;
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.every((d) => d.action === "s3:ListBucket")).toBe(true);
  });

  it("fails when the job calls outside its grants: deleting an upload, writing a manifest, reading its outputs", () => {
    const call = (action: string, resource: string, context?: Record<string, string>): CallLine => ({
      t: "",
      principal: "glue-job",
      service: "s3",
      action,
      resources: [resource],
      outcome: "ok",
      ...(context ? { context } : {}),
    });
    const report = checkTraffic(app, [
      ...jobRecord(),
      call("s3:DeleteObject", "arn:aws:s3:::csv-ingest-local-data/input/sales/a.csv"),
      call("s3:PutObject", "arn:aws:s3:::csv-ingest-local-control/manifests/next.json"),
      call("s3:GetObject", "arn:aws:s3:::csv-ingest-local-data/processed/sales/a/v=V1/part-00000.csv"),
      call("s3:GetObjectVersion", "arn:aws:s3:::csv-ingest-local-data/input/sales/a.csv"),
      call("s3:ListBucket", "arn:aws:s3:::csv-ingest-local-data", { "s3:prefix": "stats/runs/" }),
      call("s3:DeleteObject", "arn:aws:s3:::csv-ingest-local-data/stats/runs/r.json"),
    ]);
    expect(report.denied.map((d) => `${d.action} ${short(d.resource)}`)).toEqual([
      "s3:DeleteObject data/input/sales/a.csv",
      "s3:PutObject control/manifests/next.json",
      "s3:GetObject data/processed/sales/a/v=V1/part-00000.csv",
      "s3:GetObjectVersion data/input/sales/a.csv",
      "s3:ListBucket data",
      "s3:DeleteObject data/stats/runs/r.json",
    ]);
  });

  it("fails when the role has a grant no call needs (the stats/ deletes and listings it had before)", () => {
    const wider = withRoleStatements(app, "glue-job", (statements) => [
      ...statements,
      { Effect: "Allow", Action: ["s3:DeleteObject"], Resource: [`${data()}/stats/runs/*`] },
      {
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: [data()],
        Condition: { StringLike: { "s3:prefix": ["stats/runs/*"] } },
      },
    ]);
    const report = checkTraffic(wider, jobRecord());
    expect(report.unused.filter((g) => !explained(g)).map((g) => `${g.action} ${short(g.resource)}`)).toEqual([
      "s3:DeleteObject data/stats/runs/*",
    ]);
    expect(unusedListPrefixes(wider, jobRecord()).map((u) => u.prefix)).toEqual(["input/*", "stats/runs/*"]);
  });
});
