/**
 * Least privilege proven by traffic (issue 12): the calls of a twin call record, checked against the policies this
 * app gives each caller's role. Every call must be allowed; every grant no call used must be one of the listed,
 * explained ones (docs/notes/security.md has the table). The record here is a hand-written fixture in the twin's
 * format (fixtures/calls.twin.jsonl: the calls of an upload → run → record → sweep cycle); the hostile-input e2e test
 * checks the twin's real record of its own run the same way.
 */
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type EvaluatedApp, evaluateApp } from "./helpers/app";
import { type CallLine, checkTraffic, explained, parseCalls } from "./helpers/traffic";

let app: EvaluatedApp;
beforeAll(async () => {
  app = await evaluateApp("dev");
});

const fixture = () => parseCalls(fs.readFileSync(path.join(import.meta.dirname, "fixtures/calls.twin.jsonl"), "utf8"));

describe("least privilege, proven by the twin's calls", () => {
  it("allows every call of the record under the caller's role (the twin's own stand-ins excepted, with reasons)", () => {
    const report = checkTraffic(app, fixture());
    expect(report.unmapped).toEqual([]);
    expect(report.denied).toEqual([]);
    expect(report.checked).toBe(43);
    expect(report.twinOnly).toBe(2);
    expect(report.notPipeline).toBe(1);
  });

  it("leaves no grant unused but the listed ones, each with the call on AWS that needs it", () => {
    const report = checkTraffic(app, fixture());
    const unexplained = report.unused.filter((g) => !explained(g));
    expect(unexplained).toEqual([]);
    console.info(
      `grants used by the record:\n${report.used.map((g) => `  ${g.role} ${g.action} ${g.resource} ← ${g.call}`).join("\n")}\n` +
        `grants the record did not use (explained):\n${report.unused.map((g) => `  ${g.role} ${g.action} ${g.resource}`).join("\n")}`,
    );
  });

  it("flags a call outside a role's grants: a batcher write to processed/ or manifests/, a batcher reading a run", () => {
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
    ];
    const report = checkTraffic(app, bad);
    expect(report.denied.map((d) => `${d.principal} ${d.action} ${d.resource.replace(/^.*:::[^/]*\//, "")}`)).toEqual([
      "batcher s3:PutObject processed/x/v=1/p.csv",
      `batcher glue:GetJobRun arn:aws:glue:us-east-1:123456789012:job/${app.outputs.glueJobName}`,
      "batcher s3:PutObject manifests/r.json",
    ]);
  });

  it("names a principal the app has no role for", () => {
    const report = checkTraffic(app, [
      { t: "", principal: "stranger", service: "s3", action: "s3:GetObject", resources: ["*"], outcome: "ok" },
    ]);
    expect(report.unmapped).toEqual(["stranger"]);
  });
});
