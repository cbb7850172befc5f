/** The AWS API emulator: a moto server (the project's .venv) on 127.0.0.1, owned by the twin process. */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { get } from "node:http";
import { createServer } from "node:net";
import { dirname } from "node:path";
import { PortInUseError, TwinStartError } from "./errors.js";

export interface MotoServer {
  readonly endpoint: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (or checks that `wanted` is free). */
export async function freePort(wanted = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", (e: NodeJS.ErrnoException) => reject(e.code === "EADDRINUSE" ? new PortInUseError(wanted) : e));
    srv.listen(wanted, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : wanted;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** node:http rather than fetch: fetch refuses some ports (e.g. 22) that a user may still pick. */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(url, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.setTimeout(2_000, () => req.destroy());
  });
}

export async function startMoto(opts: {
  /** `moto_server`, or the venv's python when `script` is given. */
  motoServer: string;
  /** A Python script that starts moto itself (the twin's patched moto, `packages/twin/moto_server.py`). */
  script?: string;
  port?: number;
  logFile: string;
  readyTimeoutMs?: number;
}): Promise<MotoServer> {
  const port = await freePort(opts.port ?? 0);
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const log = createWriteStream(opts.logFile, { flags: "a" });
  const args = [...(opts.script ? [opts.script] : []), "-H", "127.0.0.1", "-p", String(port)];
  const child: ChildProcess = spawn(opts.motoServer, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
    // Its own process group: a terminal's Ctrl-C reaches only the twin, which then stops moto last, in order.
    detached: true,
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  let exited: string | null = null;
  child.once("exit", (code, signal) => {
    exited = `moto_server exited (${signal ?? code})`;
  });
  child.once("error", (e) => {
    exited = `moto_server could not start: ${e.message}`;
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exited) throw new TwinStartError(`${exited}; see ${opts.logFile}`);
    if (await answers(`${endpoint}/moto-api/data.json`)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new TwinStartError(`moto_server did not answer on ${endpoint} within 30 s; see ${opts.logFile}`);
    }
    await sleep(100);
  }
  const pid = child.pid ?? -1;
  return {
    endpoint,
    port,
    pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const killed = await Promise.race([gone.then(() => true), sleep(5_000).then(() => false)]);
      if (!killed) {
        child.kill("SIGKILL");
        await gone;
      }
      log.end();
    },
  };
}
