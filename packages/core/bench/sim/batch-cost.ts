/**
 * The handler's own cost: ONE batch of 10,000 upload messages through handleUploadBatch, in a fresh in-memory world
 * (prod config, so the run it starts takes the first 5,000 uploads: runs.maxFilesPerRun). The messages and the
 * objects are prepared before measuring. Peak memory is sampled every 2 ms while the handler runs (it yields on every
 * ledger call, so the sampler gets to run); the heap figure includes garbage not yet collected.
 */
import { pipelineConfig } from "../../src/config/pipeline.js";
import { MemoryLedger } from "../../src/ledger/memory.js";
import type { Deps } from "../../src/ledger/ports.js";
import { handleUploadBatch } from "../../src/runs/intake.js";
import {
  CountingMetrics,
  ManualClock,
  MemoryGlue,
  MemoryLog,
  MemoryObjects,
  sequentialRunKeys,
} from "../../src/testing/fakes.js";
import { objectCreatedEvent } from "../../tests/helpers/world.js";

export interface BatchCost {
  readonly records: number;
  readonly recorded: number;
  readonly runFiles: number;
  readonly wallMs: number;
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  readonly peakRssDeltaMiB: number;
  readonly peakHeapUsedDeltaMiB: number;
}

export async function measureBatch(records = 10_000): Promise<BatchCost> {
  const config = pipelineConfig("prod");
  const clock = new ManualClock();
  const objects = new MemoryObjects(clock);
  const deps: Deps = {
    ledger: new MemoryLedger(),
    objects,
    glue: new MemoryGlue(clock),
    clock,
    log: new MemoryLog(false),
    metrics: new CountingMetrics(),
    newRunKey: sequentialRunKeys(),
    bucket: "data-bucket",
  };
  const messages = Array.from({ length: records }, (_, i) => {
    const version = objects.put("data-bucket", `input/batch/f${i}.csv`, `id,name\n${i},x\n`);
    return { messageId: `m-${i}`, body: JSON.stringify(objectCreatedEvent(version)) };
  });

  const base = process.memoryUsage();
  let peakRss = base.rss;
  let peakHeap = base.heapUsed;
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  const sampler = setInterval(sample, 2);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await handleUploadBatch(deps, config, messages);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  sample();
  const MiB = 1024 * 1024;
  return {
    records,
    recorded: result.recorded,
    runFiles: result.run?.started ? result.run.files : 0,
    wallMs,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    peakRssDeltaMiB: (peakRss - base.rss) / MiB,
    peakHeapUsedDeltaMiB: (peakHeap - base.heapUsed) / MiB,
  };
}
