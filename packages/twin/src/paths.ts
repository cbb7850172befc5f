import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { STATE_FILE, TWIN_DIR } from "./constants.js";

/** The workspace root: the nearest folder above this package with pnpm-workspace.yaml. */
export function workspaceRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, "pnpm-workspace.yaml"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no pnpm-workspace.yaml above ${from}`);
    dir = up;
  }
}

export interface ProjectPaths {
  readonly root: string;
  readonly twinDir: string;
  readonly stateFile: string;
  readonly venvPython: string;
  readonly motoServer: string;
  /** The twin's moto: moto with its S3 → EventBridge events made to match AWS's (run with `venvPython`). */
  readonly twinMotoServer: string;
  readonly glueJob: string;
  /** The twin's stand-in for Athena: DuckDB over the catalog's tables (`ingest query`; run with `venvPython`). */
  readonly twinQuery: string;
  readonly glueSamples: string;
  readonly functionsSrc: string;
}

/** INGEST_TWIN_DIR moves the twin's folder (state, logs, staging), e.g. so tests never touch a user's twin. */
export const TWIN_DIR_ENV = "INGEST_TWIN_DIR";

export function projectPaths(
  root: string = workspaceRoot(),
  twinDir = process.env[TWIN_DIR_ENV] ?? join(root, TWIN_DIR),
): ProjectPaths {
  return {
    root,
    twinDir,
    stateFile: join(twinDir, STATE_FILE),
    venvPython: join(root, ".venv", "bin", "python"),
    motoServer: join(root, ".venv", "bin", "moto_server"),
    twinMotoServer: join(root, "packages", "twin", "moto_server.py"),
    glueJob: join(root, "glue", "job.py"),
    twinQuery: join(root, "packages", "twin", "query.py"),
    glueSamples: join(root, "glue", "samples"),
    functionsSrc: join(root, "packages", "functions", "src"),
  };
}
