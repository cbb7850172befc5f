/**
 * Evaluates the real SST app (sst.config.ts + infra/) under Pulumi mocks, with the globals SST's CLI provides
 * (`$app`, `$cli`, `$dev`, `$util`, `$interpolate`, …, `sst`, `aws`) and a fake of the CLI's RPC server (SST
 * functions ask it to build their handler; the bootstrap asks it for the asset bucket). Returns every resource
 * the program registered, with its inputs, and the program's outputs.
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import * as aws from "../../../.sst/platform/node_modules/@pulumi/aws";
import * as pulumi from "../../../.sst/platform/node_modules/@pulumi/pulumi";
import { renderPolicyDocument } from "./iam";

export const ACCOUNT_ID = "123456789012";
export const REGION = "us-east-1";
const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");
const PLATFORM = path.join(REPO_ROOT, ".sst/platform");

export interface RegisteredResource {
  readonly type: string;
  readonly name: string;
  // biome-ignore lint/suspicious/noExplicitAny: mock inputs are whatever the program passed
  readonly inputs: Record<string, any>;
  // biome-ignore lint/suspicious/noExplicitAny: the state the mock answered with (inputs + ids)
  readonly state: Record<string, any>;
}

export interface EvaluatedApp {
  readonly app: { name: string; removal: string; protect: boolean; home: string };
  readonly resources: RegisteredResource[];
  // biome-ignore lint/suspicious/noExplicitAny: the program's outputs, resolved
  readonly outputs: Record<string, any>;
  /** The files the fake `Runtime.Build` was asked to build (one per handler). */
  readonly builds: string[];
  ofType(type: string): RegisteredResource[];
  one(type: string, predicate?: (r: RegisteredResource) => boolean): RegisteredResource;
}

/** The `glue/` folder the app sees: a script, its package, and files that must not ship (tests, pytest config,
 * caches, a module outside the package). */
export const GLUE_FIXTURE = [
  "job.py",
  "csv_ingest/__init__.py",
  "csv_ingest/engine/transform.py",
  "csv_ingest/engine/test_transform.py",
  "csv_ingest/conftest.py",
  "csv_ingest/helpers_test.py",
  "csv_ingest/__pycache__/transform.cpython-311.pyc",
  "csv_ingest/engine/notes.md",
  "tests/test_job.py",
  "bench/benchmark.py",
];

/** The file names of an archive a resource was given (an AssetArchive's name → asset map, as the mocks see it). */
export async function archiveFiles(source: unknown): Promise<string[]> {
  const assets: unknown = await (source as { assets?: unknown } | undefined)?.assets;
  if (!assets || typeof assets !== "object") throw new Error(`not an archive of assets: ${JSON.stringify(source)}`);
  return Object.keys(assets).sort();
}

export interface EvaluateOptions {
  /** Evaluate as `sst dev` does (SST's `$dev` global true), instead of as a deploy. */
  readonly dev?: boolean;
}

export async function evaluateApp(stage: string, options: EvaluateOptions = {}): Promise<EvaluatedApp> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "infra-test-"));
  const root = path.join(work, "root");
  fs.mkdirSync(path.join(root, "glue"), { recursive: true });
  for (const file of GLUE_FIXTURE) {
    fs.mkdirSync(path.dirname(path.join(root, "glue", file)), { recursive: true });
    fs.writeFileSync(path.join(root, "glue", file), "# fixture\n");
  }

  const builds: string[] = [];
  const server = await startRpcServer(work, builds);
  process.env.SST_SERVER = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const resources: RegisteredResource[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const state = mockState(args.type, args.name, args.inputs);
        resources.push({ type: args.type, name: args.name, inputs: args.inputs, state });
        return { id: `${args.name}-id`, state };
      },
      call(args) {
        return mockCall(args.token, args.inputs);
      },
    },
    "csv-ingest",
    stage,
    false,
  );

  const platform = await import("../../../.sst/platform/src/components/component");
  installGlobals(stage, root, work, platform, options.dev ?? false);
  const g = globalThis as Record<string, unknown>;
  g.sst = await import("../../../.sst/platform/src/components/index");

  try {
    const config = (await import("../../../sst.config")).default as unknown as {
      app(input: { stage: string }): { name: string; removal: string; protect: boolean; home: string };
      run(): Promise<Record<string, unknown>>;
    };
    const app = config.app({ stage });
    Object.assign(g.$app as object, { removal: app.removal, protect: app.protect });
    const program = await config.run();
    const outputs = await resolve(program);
    await pulumi.runtime.disconnect();
    return {
      app,
      resources,
      outputs,
      builds,
      ofType: (type) => resources.filter((r) => r.type === type),
      one(type, predicate = () => true) {
        const found = resources.filter((r) => r.type === type && predicate(r));
        if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.map((r) => r.name).join(", ")}`);
        return found[0] as RegisteredResource;
      },
    };
  } finally {
    server.close();
  }
}

function installGlobals(
  stage: string,
  root: string,
  work: string,
  platform: typeof import("../../../.sst/platform/src/components/component"),
  dev: boolean,
) {
  const g = globalThis as Record<string, unknown>;
  g.$app = { name: "csv-ingest", stage, removal: "remove", protect: false, providers: {} };
  g.$dev = dev;
  g.$cli = {
    command: dev ? "dev" : "deploy",
    rpc: process.env.SST_SERVER,
    paths: { home: work, root, work, platform: PLATFORM },
    state: { version: {} },
  };
  g.$config = (input: unknown) => input;
  g.$util = pulumi;
  g.$output = pulumi.output;
  g.$apply = pulumi.output;
  g.$resolve = pulumi.all;
  g.$interpolate = pulumi.interpolate;
  g.$concat = pulumi.concat;
  g.$jsonParse = pulumi.jsonParse;
  g.$jsonStringify = pulumi.jsonStringify;
  g.$transform = platform.$transform;
  g.$asset = platform.$asset;
  g.aws = aws;
}

/** Answers the two RPCs SST components make during a deploy: build a handler, and the bootstrap bucket. */
function startRpcServer(work: string, builds: string[]): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      const { method, params } = JSON.parse(body) as { method: string; params: [Record<string, unknown>] };
      const answer = (result: unknown) => res.end(JSON.stringify({ result, error: null }));
      if (method === "Provider.Aws.Bootstrap") {
        return answer({ asset: "sst-asset-bucket", assetEcrRegistryId: ACCOUNT_ID, assetEcrUrl: "", state: "" });
      }
      // Only under `sst dev`: the live bridge's AppSync endpoints, and the CLI's list of functions to run locally.
      if (method === "Provider.Aws.Appsync") return answer({ http: "appsync.invalid", realtime: "appsync.invalid" });
      if (method === "Runtime.AddTarget") return answer({});
      if (method === "Runtime.Build") {
        const handler = String(params[0].handler);
        builds.push(handler);
        const out = fs.mkdtempSync(path.join(work, "build-"));
        fs.writeFileSync(path.join(out, "index.mjs"), "export const handler = async () => ({});\n");
        return answer({ handler: "index.handler", out, errors: [], sourcemaps: [] });
      }
      res.end(JSON.stringify({ result: null, error: `rpc: can't find method ${method}` }));
    });
  });
  return new Promise((ready) => server.listen(0, "127.0.0.1", () => ready(server)));
}

// biome-ignore lint/suspicious/noExplicitAny: mock state is untyped by nature
function mockState(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
  const physical = inputs.name ?? `${name}-physical`;
  const service = type.split(":")[1]?.split("/")[0] ?? "unknown";
  const base = { ...inputs, name: physical, arn: `arn:aws:${service}:${REGION}:${ACCOUNT_ID}:${physical}` };
  switch (type) {
    case "aws:s3/bucket:Bucket": {
      const bucket = inputs.bucket ?? `${name}-physical`;
      return { ...base, bucket, arn: `arn:aws:s3:::${bucket}` };
    }
    case "aws:sqs/queue:Queue":
      return {
        ...base,
        arn: `arn:aws:sqs:${REGION}:${ACCOUNT_ID}:${physical}`,
        url: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT_ID}/${physical}`,
      };
    case "aws:dynamodb/table:Table":
      return { ...base, arn: `arn:aws:dynamodb:${REGION}:${ACCOUNT_ID}:table/${physical}` };
    case "aws:cloudwatch/eventRule:EventRule":
      return { ...base, arn: `arn:aws:events:${REGION}:${ACCOUNT_ID}:rule/${physical}` };
    case "aws:iam/role:Role":
      return { ...base, arn: `arn:aws:iam::${ACCOUNT_ID}:role/${physical}` };
    case "aws:lambda/function:Function":
      return { ...base, arn: `arn:aws:lambda:${REGION}:${ACCOUNT_ID}:function:${physical}` };
    case "random:index/randomBytes:RandomBytes":
      return { ...inputs, base64: "AAAA", hex: "00" };
    default:
      return base;
  }
}

// biome-ignore lint/suspicious/noExplicitAny: invoke inputs/outputs are untyped by nature
function mockCall(token: string, inputs: Record<string, any>): Record<string, any> {
  switch (token) {
    case "aws:index/getPartition:getPartition":
      return { id: "aws", partition: "aws", dnsSuffix: "amazonaws.com", reverseDnsPrefix: "com.amazonaws" };
    case "aws:index/getRegion:getRegion":
      return { id: REGION, name: REGION, region: REGION, endpoint: `ec2.${REGION}.amazonaws.com` };
    case "aws:index/getCallerIdentity:getCallerIdentity":
      return { id: ACCOUNT_ID, accountId: ACCOUNT_ID, arn: `arn:aws:iam::${ACCOUNT_ID}:user/test`, userId: "test" };
    case "aws:iam/getPolicyDocument:getPolicyDocument":
      return { ...inputs, id: "policy", json: JSON.stringify(renderPolicyDocument(inputs.statements ?? [])) };
    default:
      throw new Error(`unmocked invoke ${token}`);
  }
}

/** Resolves a record of Outputs/plain values to plain values. */
// biome-ignore lint/suspicious/noExplicitAny: outputs are whatever the program returned
function resolve(record: Record<string, unknown>): Promise<Record<string, any>> {
  return new Promise((done) => {
    pulumi.output(record).apply((value) => {
      done(value as Record<string, unknown>);
      return value;
    });
  });
}
