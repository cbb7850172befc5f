/**
 * The CLI as a user runs it, against a twin it starts itself (`local up --detach`), and an upload through a client
 * nobody here wrote: boto3, configured only by `eval "$(ingest local env)"`.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TWIN_DIR_ENV, workspaceRoot } from "../../src/paths.js";
import { isAlive, type TwinState } from "../../src/state.js";
import { customersCsv } from "../helpers/csv.js";

const root = workspaceRoot();
const twinDir = join(root, ".twin", "tests", `cli-${process.pid}`);
const env = { ...process.env, [TWIN_DIR_ENV]: twinDir };
const tsx = join(root, "node_modules", ".bin", "tsx");
const main = join(root, "packages", "cli", "src", "main.ts");
const cliCommand = `${tsx} ${main}`;

function ingest(...args: string[]) {
  const r = spawnSync(tsx, [main, ...args], { cwd: root, env, encoding: "utf8", timeout: 400_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("the ingest CLI against a twin it started", () => {
  let state: TwinState;
  const files = join(twinDir, "files");

  beforeAll(() => {
    rmSync(twinDir, { recursive: true, force: true });
    mkdirSync(join(files, "sub"), { recursive: true });
    writeFileSync(join(files, "a.csv"), customersCsv([1, 2]));
    writeFileSync(join(files, "sub", "b.csv"), customersCsv([3]));
    const r = ingest("local", "up", "--detach", "--json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    state = JSON.parse(r.stdout) as TwinState;
  });
  afterAll(() => {
    if (state && isAlive(state.pid)) ingest("local", "down");
  });

  it("local up --detach writes the state; a second up is refused with one line", () => {
    expect(existsSync(join(twinDir, "state.json"))).toBe(true);
    expect(isAlive(state.pid)).toBe(true);
    const again = ingest("local", "up", "--detach");
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split("\n")).toHaveLength(1);
    expect(again.stderr).toContain("already running");
  });

  it("boto3 uploads through `local env`; `upload` sends a folder; `wait` and `status` report them processed", () => {
    const boto = spawnSync(
      "bash",
      [
        "-c",
        `set -e; eval "$(${cliCommand} local env)"; ${join(root, ".venv", "bin", "python")} -c '
import os, boto3
boto3.client("s3").put_object(Bucket=os.environ["INGEST_BUCKET"], Key="input/boto3/hello.csv", Body=b"${customersCsv([9]).replaceAll("\n", "\\n")}")
'`,
      ],
      { cwd: root, env, encoding: "utf8" },
    );
    expect(boto.stderr).toBe("");
    expect(boto.status).toBe(0);

    const up = ingest("upload", files, "--prefix", "cli", "--json");
    expect(up.code).toBe(0);
    expect((JSON.parse(up.stdout) as { key: string }[]).map((u) => u.key).sort()).toEqual([
      "input/cli/a.csv",
      "input/cli/sub/b.csv",
    ]);

    const wait = ingest("wait", "--timeout", "300", "--json");
    expect(wait.code).toBe(0);
    const snap = JSON.parse(wait.stdout) as { uploads: { key: string; status: string }[] };
    expect(snap.uploads.map((u) => [u.key, u.status]).sort()).toEqual([
      ["input/boto3/hello.csv", "processed"],
      ["input/cli/a.csv", "processed"],
      ["input/cli/sub/b.csv", "processed"],
    ]);

    const one = ingest("status", "--file", "boto3/hello.csv", "--json");
    const filtered = JSON.parse(one.stdout) as { uploads: { rowsProcessed: number }[]; runs: unknown[] };
    expect(filtered.uploads).toHaveLength(1);
    expect(filtered.uploads[0]?.rowsProcessed).toBe(1);
    expect(filtered.runs).toHaveLength(1);

    const table = ingest("status");
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/input\/cli\/sub\/b\.csv\s+processed/);
    expect(table.stdout).toContain("Runs (");

    const redrive = ingest("redrive", "--json");
    expect(JSON.parse(redrive.stdout)).toMatchObject({
      dlqMessagesMoved: { ingest: 0, recorder: 0 },
      uploadsRequeued: [],
    });
  });

  it("local down stops the twin and its emulator; commands then fail with one clear line", () => {
    const down = ingest("local", "down");
    expect(down.code).toBe(0);
    expect(isAlive(state.pid)).toBe(false);
    expect(isAlive(state.motoPid)).toBe(false);
    expect(existsSync(join(twinDir, "state.json"))).toBe(false);
    const status = ingest("status");
    expect(status.code).toBe(1);
    expect(status.stderr.trim()).toMatch(/^ingest: the local twin is not running/);
    expect(status.stderr.trim().split("\n")).toHaveLength(1);
  });
});
