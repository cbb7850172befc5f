/**
 * Hostile input end to end (issue 12), on a twin with the real handlers and the real Glue job: keys with `..`, `.`,
 * `//` and the pipeline's own tree names, `.CSV` in upper and mixed case, a key and a header carrying terminal escape
 * sequences, and a file over the per-file size cap. Each ends processed in its own safe folder or failed with its
 * reason, and `ingest status` shows it all without letting one escape sequence through.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { HANDLER_ENV, type UploadRecord } from "@ingest/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TWIN_DIR_ENV, workspaceRoot } from "../../src/paths.js";
import type { Twin } from "../../src/twin.js";
import { customersCsv } from "../helpers/csv.js";
import { TwinProbe } from "../helpers/pipeline.js";
import { startTestTwin, testPaths } from "../helpers/twin.js";

const CAP = 4096;
const NAME = "e2e-hostile";
const ESC = "\u001b";

const KEYS = {
  dotdot: "input/hostile/x/../escape/a.csv",
  dot: "input/hostile/./b.csv",
  doubleSlash: "input/hostile//c.csv",
  rejectedTree: "input/rejected/d.csv",
  statsTree: "input/stats/e.csv",
  upper: "input/hostile/UPPER.CSV",
  mixed: "input/hostile/Mixed.Csv",
  // moto refuses a newline in a key (S3 takes it); the CLI's escaping of newlines is covered by its unit tests.
  escapes: `input/hostile/${ESC}[2J${ESC}]0;pwned\u0007red\u009bline.csv`,
  badHeader: "input/hostile/header.csv",
  tooBig: "input/hostile/too-big.csv",
  formulas: "input/hostile/formulas.csv",
} as const;

/** Cells a spreadsheet would run (OWASP's CSV injection list); `-12.5`-like numbers are not among them. */
const FORMULA_ROWS = ["=1+1", "@SUM(1+1)", "+cmd", "-2+3"].map(
  (cell, i) => `${i + 1},${cell},user${i + 1}@example.com,01-04-2025,${i + 1}.50,active`,
);

describe("hostile input on the twin", () => {
  let twin: Twin;
  let probe: TwinProbe;
  let uploads: Map<string, UploadRecord>;
  const previousCap = process.env[HANDLER_ENV.maxFileBytes];

  beforeAll(async () => {
    // The handlers run in this process and read the cap from the environment (a small one, so the test stays small).
    process.env[HANDLER_ENV.maxFileBytes] = String(CAP);
    twin = await startTestTwin(NAME, { writeState: true });
    probe = new TwinProbe(twin);
    const big = customersCsv(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(big.length).toBeGreaterThan(CAP);
    await probe.putAll([
      ...[KEYS.dotdot, KEYS.dot, KEYS.doubleSlash, KEYS.rejectedTree, KEYS.statsTree, KEYS.upper, KEYS.mixed].map(
        (key, i) => ({ key, body: customersCsv([i + 1]) }),
      ),
      { key: KEYS.escapes, body: customersCsv([42]) },
      { key: KEYS.badHeader, body: `id,name${ESC}[31m,email\r\n1,a,b\n` },
      { key: KEYS.tooBig, body: big },
      { key: KEYS.formulas, body: `id,name,email,date,amount,status\n${FORMULA_ROWS.join("\n")}\n` },
    ]);
    const settled = await probe.settled(Object.values(KEYS), 240_000);
    uploads = new Map(settled.map((u) => [u.key, u]));
  });
  afterAll(async () => {
    probe?.close();
    await twin?.stop();
    if (previousCap === undefined) delete process.env[HANDLER_ENV.maxFileBytes];
    else process.env[HANDLER_ENV.maxFileBytes] = previousCap;
  });

  const folderOf = (key: string) => {
    const u = uploads.get(key);
    expect(u?.status, `${JSON.stringify(key)}: ${u?.error}`).toBe("processed");
    return (u?.output ?? "").replace(`s3://${twin.names.bucket}/`, "").replace(`/v=${u?.versionTag}/`, "");
  };

  it("writes keys with `..`, `.`, `//` to their own encoded folders (no such segment in any output key)", async () => {
    expect(folderOf(KEYS.dotdot)).toBe("processed/hostile/x/%2E./escape/a");
    expect(folderOf(KEYS.dot)).toBe("processed/hostile/%2E/b");
    expect(folderOf(KEYS.doubleSlash)).toBe("processed/hostile/%2F/c");
    for (const key of await probe.keysUnder("processed/")) {
      for (const segment of key.split("/").slice(0, -1)) expect(["", ".", ".."]).not.toContain(segment);
    }
    expect(await probe.processedRows(uploads.get(KEYS.dotdot)?.output ?? "")).toHaveLength(1);
  });

  it("keeps `input/rejected/…` and `input/stats/…` out of the pipeline's own trees (top-level rejected/, stats/)", () => {
    expect(folderOf(KEYS.rejectedTree)).toBe("processed/rejected/d");
    expect(folderOf(KEYS.statsTree)).toBe("processed/stats/e");
  });

  it("processes `.CSV` in upper and mixed case", () => {
    expect(folderOf(KEYS.upper)).toBe("processed/hostile/UPPER%2ECSV");
    expect(folderOf(KEYS.mixed)).toBe("processed/hostile/Mixed%2ECsv");
  });

  it("neutralises formula cells in every CSV the job writes (a leading ' before = + - @)", async () => {
    const u = uploads.get(KEYS.formulas);
    expect(u?.status).toBe("processed");
    const lines: string[] = [];
    for (const folder of [u?.output, u?.rejectedOutput]) {
      if (!folder) continue;
      for (const key of await probe.keysUnder(probe.keyOf(folder))) {
        if (key.endsWith(".csv")) lines.push(...(await probe.text(key)).split(/\r?\n/).slice(1).filter(Boolean));
      }
    }
    expect(lines).toHaveLength(FORMULA_ROWS.length); // every row is in the processed or the rejected output
    const cells = lines.flatMap((l) => l.split(","));
    for (const cell of cells) expect(cell).not.toMatch(/^[=+@\t\r]|^-(?!\d+(\.\d+)?$)/);
    expect(cells.some((c) => c.startsWith("'=1+1"))).toBe(true);
    expect(cells.some((c) => c.startsWith("'-2+3"))).toBe(true);
  });

  it("gives a key with escape sequences (ESC, BEL, C1) a folder without them", () => {
    expect(folderOf(KEYS.escapes)).toBe("processed/hostile/%1B%5B2J%1B%5D0%3Bpwned%07red%C2%9Bline");
  });

  it("fails a file over the size cap at intake, with the reason, never in a run", () => {
    const u = uploads.get(KEYS.tooBig);
    expect(u?.status).toBe("failed");
    expect(u?.runKey ?? null).toBeNull();
    expect(u?.error).toMatch(new RegExp(`^too large: ${u?.size} bytes is over the per-file cap of ${CAP} bytes`));
  });

  it("`ingest status` shows every upload on one line, escapes included but inert; --json keeps them exact", () => {
    const root = workspaceRoot();
    const env = { ...process.env, [TWIN_DIR_ENV]: testPaths(NAME).twinDir };
    const cli = (...args: string[]) =>
      spawnSync(join(root, "node_modules", ".bin", "tsx"), [join(root, "packages/cli/src/main.ts"), ...args], {
        cwd: root,
        env,
        encoding: "utf8",
        timeout: 120_000,
      });
    const human = cli("status");
    expect(human.status, human.stderr).toBe(0);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: checking for control characters is the point
    expect(human.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    const fileLines = human.stdout.split("\n").filter((l) => l.startsWith("input/"));
    expect(fileLines).toHaveLength(Object.keys(KEYS).length);
    expect(human.stdout).toContain("input/hostile/\\x1b[2J\\x1b]0;pwned\\x07red\\x9bline.csv");
    expect(human.stdout).toMatch(/too large: \d+ bytes is over the per-file cap of 4096 bytes/);
    const badHeader = fileLines.find((l) => l.startsWith(KEYS.badHeader));
    expect(badHeader).toContain("failed");
    // The job's reason quotes the uploaded header; the table cuts it at 100 characters, after the escape began.
    expect(badHeader).toContain("(header: id, name\\x1b[");

    const json = cli("status", "--json");
    expect(json.status, json.stderr).toBe(0);
    const keys = (JSON.parse(json.stdout) as { uploads: { key: string }[] }).uploads.map((u) => u.key);
    expect(keys).toContain(KEYS.escapes);

    const piped = spawnSync(
      "bash",
      [
        "-c",
        `${JSON.stringify(join(root, "node_modules/.bin/tsx"))} ${JSON.stringify(join(root, "packages/cli/src/main.ts"))} status | head -1; echo "ingest=\${PIPESTATUS[0]}"`,
      ],
      { cwd: root, env, encoding: "utf8", timeout: 120_000 },
    );
    expect(piped.stdout.trim().split("\n").pop()).toBe("ingest=0");
    expect(piped.stderr).not.toMatch(/EPIPE/);
  });

  it("made only AWS calls that each caller's role allows on AWS (least privilege, proven by this run's traffic)", async () => {
    await twin.stop();
    expect(existsSync(twin.callRecordFile)).toBe(true);
    // Loaded by path: the infra helpers evaluate the SST app under Pulumi mocks (their own tsconfig).
    const infra = join(workspaceRoot(), "infra", "tests", "helpers");
    const { evaluateApp } = await import(join(infra, "app.ts"));
    const { checkTraffic, explained, parseCalls } = await import(join(infra, "traffic.ts"));
    const report = checkTraffic(await evaluateApp("dev"), parseCalls(readFileSync(twin.callRecordFile, "utf8")));
    expect(report.unmapped).toEqual([]);
    expect(report.denied).toEqual([]);
    expect(report.checked).toBeGreaterThan(50);
    const unexplained = report.unused.filter((g: { role: string; action: string }) => !explained(g));
    console.info(
      `calls checked: ${report.checked}; grants unused in this run and not explained: ${JSON.stringify(unexplained)}`,
    );
  });
});
