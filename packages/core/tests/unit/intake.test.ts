import { describe, expect, it } from "vitest";
import { handleUploadBatch } from "../../src/runs/intake.js";
import { sweep } from "../../src/runs/sweeper.js";
import { GlueServiceError } from "../../src/testing/fakes.js";
import { makeWorld } from "../helpers/world.js";

/** The second invocation's HeadObject calls answer a little later, as when it starts a moment after the first. */
function slowHeadsFor(w: ReturnType<typeof makeWorld>, prefix: string) {
  const head = w.objects.head.bind(w.objects);
  w.objects.head = async (bucket, key) => {
    if (key.startsWith(prefix)) for (let i = 0; i < 8; i++) await new Promise<void>((r) => setImmediate(r));
    return head(bucket, key);
  };
}

describe("intake: many uploads → one run", () => {
  it("starts ONE run holding every upload of a burst", async () => {
    const w = makeWorld();
    const messages = Array.from({ length: 100 }, (_, i) => w.upload(`input/f${i}.csv`).message);

    const result = await handleUploadBatch(w.deps, w.config, messages);

    expect(result.failedMessageIds).toEqual([]);
    expect(result.recorded).toBe(100);
    expect(w.glue.runs.size).toBe(1);
    expect(result.run?.started && result.run.files).toBe(100);
    const run = result.run?.started ? result.run : null;
    const manifest = await w.manifestOf(run?.runKey ?? "");
    expect(manifest.uploads.map((u) => u.key).sort()).toEqual(messages.map((_, i) => `input/f${i}.csv`).sort());
    expect(w.ledger.slot.holder).toBe(run?.runKey);
    expect([...w.ledger.uploads.values()].every((u) => u.status === "running")).toBe(true);
  });

  it("leaves uploads that arrive while a run is active pending, and asks the run's end to look for them", async () => {
    const w = makeWorld();
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv").message]);
    const second = await handleUploadBatch(w.deps, w.config, [w.upload("input/b.csv").message]);

    expect(second.run).toEqual({ started: false, reason: "slot-held" });
    expect(second.failedMessageIds).toEqual([]);
    expect(w.glue.runs.size).toBe(1);
    expect([...w.ledger.uploads.values()].find((u) => u.key === "input/b.csv")?.status).toBe("pending");
    expect(w.ledger.slot.wakeup).toBe(true);
  });

  it("drops duplicate deliveries of one upload, within a batch and across batches", async () => {
    const w = makeWorld();
    const { version, message } = w.upload("input/a.csv");
    const again = w.message(version, "moto"); // emulator shape, constant event id

    const first = await handleUploadBatch(w.deps, w.config, [message, again]);
    const later = await handleUploadBatch(w.deps, w.config, [w.message(version)]);

    expect(first.recorded).toBe(1);
    expect(first.duplicates).toBe(1);
    expect(later.recorded).toBe(0);
    expect(later.duplicates).toBe(1);
    expect(w.ledger.uploads.size).toBe(1);
    expect(w.glue.runs.size).toBe(1);
    expect(w.metrics.get("DuplicatesDropped")).toBe(2);
  });

  it("records a re-upload of identical bytes as a new upload (new last-modified)", async () => {
    const w = makeWorld();
    await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv", "same").message]);
    w.clock.advance(1_000);
    const r = await handleUploadBatch(w.deps, w.config, [w.upload("input/a.csv", "same").message]);

    expect(r.recorded).toBe(1);
    expect(w.ledger.uploads.size).toBe(2);
  });

  it("never processes an older version whose event arrives after a newer upload", async () => {
    const w = makeWorld();
    const old = w.upload("input/a.csv", "v1");
    w.clock.advance(2_000);
    const newer = w.upload("input/a.csv", "v2");

    await handleUploadBatch(w.deps, w.config, [newer.message]);
    const late = await handleUploadBatch(w.deps, w.config, [old.message]);

    expect(late.recorded).toBe(0);
    expect([...w.ledger.uploads.values()].map((u) => u.etag)).toEqual([newer.version.etag]);
  });

  it("records an upload deleted before intake as failed, with the reason", async () => {
    const w = makeWorld();
    const { message } = w.upload("input/gone.csv");
    w.objects.delete("data-bucket", "input/gone.csv");

    const r = await handleUploadBatch(w.deps, w.config, [message]);

    const [u] = [...w.ledger.uploads.values()];
    expect(u?.status).toBe("failed");
    expect(u?.error).toMatch(/deleted before it could be processed/);
    expect(r.failedMessageIds).toEqual([]);
    expect(w.glue.runs.size).toBe(0);
  });

  it("acknowledges messages that are not uploads without failing the batch", async () => {
    const w = makeWorld();
    const good = w.upload("input/a.csv").message;
    const r = await handleUploadBatch(w.deps, w.config, [{ messageId: "junk", body: "{not json" }, good]);
    expect(r.ignored).toBe(1);
    expect(r.failedMessageIds).toEqual([]);
    expect(r.recorded).toBe(1);
  });

  it("lets two concurrent invocations of one burst start ONE run holding all of it (settle window)", async () => {
    const w = makeWorld();
    const a = Array.from({ length: 30 }, (_, i) => w.upload(`input/a${i}.csv`).message);
    const b = Array.from({ length: 30 }, (_, i) => w.upload(`input/b${i}.csv`).message);
    slowHeadsFor(w, "input/b");

    const [ra, rb] = await Promise.all([
      handleUploadBatch(w.deps, w.config, a),
      handleUploadBatch(w.deps, w.config, b),
    ]);

    expect(w.glue.runs.size).toBe(1);
    const started = [ra.run, rb.run].filter((r) => r?.started);
    expect(started).toHaveLength(1);
    expect(started[0]?.started && started[0].files).toBe(60);
    expect([...w.ledger.uploads.values()].every((u) => u.status === "running")).toBe(true);
  });

  it("without a settle window, the same race splits the burst, and the wake-up still loses nothing", async () => {
    const w = makeWorld();
    const config = { ...w.config, runs: { ...w.config.runs, maxSettleRounds: 0 } };
    const a = Array.from({ length: 30 }, (_, i) => w.upload(`input/a${i}.csv`).message);
    const b = Array.from({ length: 30 }, (_, i) => w.upload(`input/b${i}.csv`).message);
    slowHeadsFor(w, "input/b");

    await Promise.all([handleUploadBatch(w.deps, config, a), handleUploadBatch(w.deps, config, b)]);

    expect(w.glue.runs.size).toBe(1);
    const byStatus = (s: string) => [...w.ledger.uploads.values()].filter((u) => u.status === s).map((u) => u.key);
    expect(byStatus("running").every((k) => k.startsWith("input/a"))).toBe(true);
    expect(byStatus("pending")).toHaveLength(30);
    expect(w.ledger.slot.wakeup).toBe(true);
  });

  it("caps a manifest by file count and leaves the overflow pending", async () => {
    const w = makeWorld({ maxFilesPerRun: 10 });
    const r = await handleUploadBatch(
      w.deps,
      w.config,
      Array.from({ length: 25 }, (_, i) => w.upload(`input/f${i}.csv`).message),
    );
    expect(r.run?.started && r.run.files).toBe(10);
    expect([...w.ledger.uploads.values()].filter((u) => u.status === "pending")).toHaveLength(15);
  });

  it("acknowledges the batch, frees the slot and keeps uploads pending when Glue refuses the start", async () => {
    const w = makeWorld();
    w.glue.startFaults.push({
      error: new GlueServiceError("ConcurrentRunsExceededException", 400, "busy"),
      started: false,
    });
    const messages = [w.upload("input/a.csv").message, w.upload("input/b.csv").message];

    const r = await handleUploadBatch(w.deps, w.config, messages);

    // the uploads are safe in the ledger: returning the messages would only bounce them into the DLQ
    expect(r.failedMessageIds).toEqual([]);
    expect(w.ledger.slot.holder).toBeNull();
    expect([...w.ledger.uploads.values()].map((u) => u.status)).toEqual(["pending", "pending"]);
    expect([...w.ledger.runs.values()].map((x) => x.state)).toEqual(["start_failed"]);

    // the sweeper starts them once the backoff has passed; this time Glue accepts
    w.clock.advance(w.config.runs.systemRetryBaseSeconds * 1000);
    const swept = await sweep(w.deps, w.config);
    expect(swept.next?.started && swept.next.files).toBe(2);
  });

  it("keeps the slot and the claims when it cannot know whether the run started (5xx)", async () => {
    const w = makeWorld();
    w.glue.startFaults.push({ error: new GlueServiceError("InternalServiceException", 500, "oops"), started: false });
    const messages = [w.upload("input/a.csv").message];

    const r = await handleUploadBatch(w.deps, w.config, messages);

    expect(r.failedMessageIds).toEqual([]);
    expect(w.ledger.slot.holder).not.toBeNull();
    expect([...w.ledger.runs.values()][0]?.state).toBe("starting");
    expect([...w.ledger.uploads.values()][0]?.status).toBe("running");
    expect(w.glue.runs.size).toBe(0); // the sweeper looks for it by run key once the start is stale
  });

  it("fails only the messages whose upload could not be recorded", async () => {
    const w = makeWorld();
    w.ledger.failNext = { method: "recordUpload", error: new Error("ProvisionedThroughputExceeded") };
    const m1 = w.upload("input/a.csv").message;
    const m2 = w.upload("input/b.csv").message;

    const r = await handleUploadBatch(w.deps, w.config, [m1, m2]);

    expect(r.failedMessageIds).toEqual([m1.messageId]);
    expect(r.recorded).toBe(1);
  });
});
