#!/usr/bin/env node
// The `ingest` bin: runs the TypeScript CLI through tsx (the workspace's dev dependency), as `pnpm ingest` does.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
