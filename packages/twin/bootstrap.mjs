#!/usr/bin/env node
// Installs what the project needs on a fresh machine (Node 20, Python 3.11, Java 17 present), from the package
// registries only, and skips each step that is already done. Used by `npm run demo`, `npm test` and `.ci/run`.
//   --with-sst   also write SST's platform types (.sst/platform) for type-checking infra
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const PNPM_VERSION = "12.4.2";
const SST_ENV = { SST_SKIP_DEPENDENCY_CHECK: "1", SST_TELEMETRY_DISABLED: "1", SST_NO_BUN: "1" };
const quiet = process.env.BOOTSTRAP_VERBOSE ? "inherit" : ["ignore", "ignore", "inherit"];

function fail(message) {
  console.error(`bootstrap: ${message}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: quiet, ...opts, env: { ...process.env, ...opts.env } });
  if (r.error) fail(`${cmd} could not start: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(" ")} exited with ${r.status}`);
}

function version(cmd, args = ["--version"]) {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.error ? null : `${r.stdout ?? ""}${r.stderr ?? ""}`.trim();
}

// done-markers keyed by the hash of the inputs of a step, so a changed lockfile re-runs it
function stepDone(name, inputs) {
  const h = createHash("sha256");
  for (const f of inputs) h.update(existsSync(join(root, f)) ? readFileSync(join(root, f)) : f);
  const digest = h.digest("hex");
  const marker = join(root, "node_modules", `.bootstrap-${name}`);
  const done = existsSync(marker) && readFileSync(marker, "utf8") === digest;
  return { done, mark: () => writeFileSync(marker, digest) };
}

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 20 || (major === 20 && minor < 19))
  fail(`Node ${process.versions.node} is too old: install Node 20.19 or newer`);

const java = version("java", ["-version"]);
if (!java || !/version "(17|21)/.test(java)) fail("Java 17 not found: install a JDK 17 or set JAVA_HOME and PATH");

if (version("pnpm") !== PNPM_VERSION) {
  console.error(`bootstrap: installing pnpm ${PNPM_VERSION}`);
  run("npm", ["install", "-g", `pnpm@${PNPM_VERSION}`]);
}

const node = stepDone("node", ["pnpm-lock.yaml", "package.json"]);
if (!node.done) {
  console.error("bootstrap: installing Node dependencies");
  run("pnpm", ["install", "--frozen-lockfile"]);
}

const pyReqs = ["glue/requirements-dev.txt", "packages/twin/requirements.txt"];
const py = stepDone("python", pyReqs);
const venvPython = join(root, ".venv", "bin", "python");
if (!py.done || !existsSync(venvPython)) {
  const python = version("python3.11") ? "python3.11" : "python3";
  if (!/3\.11/.test(version(python) ?? "")) fail("Python 3.11 not found: install Python 3.11 (Glue 5.0's Python)");
  console.error("bootstrap: creating .venv (pyspark, moto, pytest)");
  if (!existsSync(venvPython)) run(python, ["-m", "venv", ".venv"]);
  run(venvPython, [
    "-m",
    "pip",
    "install",
    "--quiet",
    "--disable-pip-version-check",
    ...pyReqs.flatMap((r) => ["-r", r]),
  ]);
}
py.mark();
node.mark();

if (process.argv.includes("--with-sst")) {
  const sst = stepDone("sst", ["pnpm-lock.yaml", "sst.config.ts"]);
  if (!sst.done || !existsSync(join(root, ".sst", "platform"))) {
    console.error("bootstrap: writing SST platform types (sst install)");
    run("pnpm", ["exec", "sst", "install", "--stage", "ci"], { env: SST_ENV });
  }
  sst.mark();
}
