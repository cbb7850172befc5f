/** Checks the machine before the twin starts, so a missing tool is one clear line, not a stack trace later. */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PrerequisiteError } from "./errors.js";
import type { ProjectPaths } from "./paths.js";

/** `java` from JAVA_HOME when set (what Spark uses), else from PATH. */
export function javaCommand(env: NodeJS.ProcessEnv = process.env): string {
  return env.JAVA_HOME ? join(env.JAVA_HOME, "bin", "java") : "java";
}

export function checkJava(env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(javaCommand(env), ["-version"], { encoding: "utf8" });
  const out = r.error ? "" : `${r.stdout ?? ""}${r.stderr ?? ""}`;
  const m = /version "(\d+)/.exec(out);
  if (!m || Number(m[1]) < 17) {
    throw new PrerequisiteError("Java 17 not found: install a JDK 17 or set JAVA_HOME");
  }
  return m[1] ?? "17";
}

export function checkVenv(paths: ProjectPaths): void {
  if (!existsSync(paths.venvPython) || !existsSync(paths.motoServer)) {
    throw new PrerequisiteError(
      `${paths.root}/.venv with moto is missing: run \`node packages/twin/bootstrap.mjs\` (or \`npm run demo\`)`,
    );
  }
}

export function checkGlueJob(paths: ProjectPaths): void {
  if (!existsSync(paths.glueJob)) throw new PrerequisiteError(`the Glue job ${paths.glueJob} does not exist`);
}
