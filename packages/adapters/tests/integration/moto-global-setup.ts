/** Vitest global setup (mutation runs): one moto server for every integration test file of this vitest instance. */
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startMoto } from "../../../twin/src/moto.js";
import { projectPaths } from "../../../twin/src/paths.js";

declare module "vitest" {
  export interface ProvidedContext {
    sharedMotoEndpoint: string;
  }
}

export default async function setup(project: TestProject) {
  const paths = projectPaths();
  // Stryker's sandbox has no .venv: stryker.config.mjs names the project's moto server.
  const motoServer = process.env.MUTATION_MOTO_SERVER ?? paths.motoServer;
  const moto = await startMoto({ motoServer, logFile: join(paths.twinDir, "mutation-moto.log") });
  project.provide("sharedMotoEndpoint", moto.endpoint);
  return () => moto.stop();
}
