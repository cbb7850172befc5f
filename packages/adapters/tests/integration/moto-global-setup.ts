/**
 * Vitest global setup (mutation runs): one moto server for every integration test file of this vitest instance,
 * serving ONE request at a time. Stryker's vitest runner uses worker threads, whose timing makes moto's unlocked
 * check-then-write race on concurrent conditional writes show (two `takeSlot`s both succeeding), which real DynamoDB
 * never does; a single-threaded moto applies each conditional write atomically, as DynamoDB does.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { TestProject } from "vitest/node";
import { startMoto } from "../../../twin/src/moto.js";
import { projectPaths } from "../../../twin/src/paths.js";

declare module "vitest" {
  export interface ProvidedContext {
    sharedMotoEndpoint: string;
  }
}

const SINGLE_THREADED = `import sys, moto.server as s
run = s.run_simple
s.run_simple = lambda *a, **k: run(*a, **{**k, "threaded": False})
s.main(sys.argv[1:])`;

export default async function setup(project: TestProject) {
  const paths = projectPaths();
  // Stryker's sandbox has no .venv: stryker.config.mjs names the project's moto server (its python is beside it).
  const python = join(dirname(process.env.MUTATION_MOTO_SERVER ?? paths.motoServer), "python");
  mkdirSync(paths.twinDir, { recursive: true });
  const launcher = join(paths.twinDir, "moto-single-threaded.sh");
  writeFileSync(launcher, `#!/bin/sh\nexec "${python}" -c '${SINGLE_THREADED}' "$@"\n`);
  chmodSync(launcher, 0o755);
  const moto = await startMoto({ motoServer: launcher, logFile: join(paths.twinDir, "mutation-moto.log") });
  project.provide("sharedMotoEndpoint", moto.endpoint);
  return () => moto.stop();
}
