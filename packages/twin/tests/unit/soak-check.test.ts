/**
 * The soak's checker on hand-made final states: a clean one passes, and one change per invariant makes it report
 * exactly that invariant (a checker that cannot fail is worthless). Also the workload's determinism and the
 * CSV reader the checker counts output rows with.
 */
import { describe, expect, it } from "vitest";
import {
  check,
  contentEtag,
  type GlueRunEntry,
  type OutputFolder,
  type SoakState,
  versionTag,
} from "../../soak/check.js";
import type { OpResult } from "../../soak/execute.js";
import { csvRecords } from "../../soak/observe.js";
import { glueRunsFromLog } from "../../soak/soak.js";
import { expectedCounts, fileBody, isProcessedKind, type PutOp, planWorkload } from "../../soak/workload.js";

const BUCKET = "bkt";
const T = (s: number) => Date.parse("2026-11-30T10:00:00.000Z") + s * 1000;
const at = (s: number) => new Date(T(s)).toISOString();

function put(n: number, key: string, kind: PutOp["file"]["kind"], rows: number, rejected = 0, duplicates = 0): PutOp {
  return {
    n,
    at: n * 1000,
    kind: "put",
    key,
    group: "test",
    multipart: false,
    file: { marker: n, kind, rows, rejected, duplicates },
  };
}

const A = "input/a.csv";
const B = "input/b.csv";
const P0 = put(0, A, "good", 3, 1, 1);
const P1 = put(1, A, "good", 2);
const P2 = put(2, B, "missing-column", 2);
const version = (p: PutOp, s: number) => ({ lastModified: at(s), versionId: `v${p.n}`, etag: contentEtag(p) });
const TAG0 = versionTag(version(P0, 1));
const TAG1 = versionTag(version(P1, 20));
const TAG2 = versionTag(version(P2, 21));
const R1 = "20261130T100002Z-aaaa";
const R2 = "20261130T100030Z-bbbb";
const uid = (key: string, tag: string) => `${BUCKET}/${key}@${tag}`;

function result(p: PutOp, s: number): OpResult {
  return {
    op: p,
    startedAt: T(s),
    endedAt: T(s) + 50,
    versionId: `v${p.n}`,
    etag: contentEtag(p),
    size: fileBody(p.file).length,
    error: null,
  };
}

function upload(p: PutOp, tag: string, fields: Record<string, unknown>) {
  return {
    pk: `UPLOAD#${BUCKET}/${p.key}`,
    sk: tag,
    type: "upload",
    uploadId: uid(p.key, tag),
    key: p.key,
    versionId: `v${p.n}`,
    etag: contentEtag(p),
    versionTag: tag,
    attempts: 0,
    runs: 1,
    ...fields,
  };
}

/** put #0 of a.csv processed in run R1, then put #1 of a.csv and the bad b.csv in run R2: every invariant holds. */
function cleanState(): SoakState {
  return {
    bucket: BUCKET,
    history: [result(P0, 1), result(P1, 20), result(P2, 21)],
    objects: [
      { key: A, ...version(P0, 1), isLatest: false, deleteMarker: false, size: 1 },
      { key: A, ...version(P1, 20), isLatest: true, deleteMarker: false, size: 1 },
      { key: B, ...version(P2, 21), isLatest: true, deleteMarker: false, size: 1 },
    ],
    ledger: [
      upload(P0, TAG0, {
        status: "processed",
        runKey: R1,
        output: `s3://${BUCKET}/processed/a/v=${TAG0}/`,
        rejectedOutput: `s3://${BUCKET}/processed/rejected/a/v=${TAG0}/`,
        rowsRead: 5,
        rowsProcessed: 3,
        rowsRejected: 1,
        updatedAt: at(15),
      }),
      upload(P1, TAG1, {
        status: "processed",
        runKey: R2,
        output: `s3://${BUCKET}/processed/a/v=${TAG1}/`,
        rejectedOutput: `s3://${BUCKET}/processed/rejected/a/v=${TAG1}/`,
        rowsRead: 2,
        rowsProcessed: 2,
        rowsRejected: 0,
        updatedAt: at(50),
      }),
      upload(P2, TAG2, {
        status: "failed",
        runKey: R2,
        error: "input/b.csv: missing required column(s): status (header: id, name, email, date, amount)",
        updatedAt: at(50),
      }),
      { pk: "RUN", sk: R1, type: "run", runKey: R1, state: "succeeded", glueRunId: "jr_1" },
      { pk: "RUN", sk: R2, type: "run", runKey: R2, state: "succeeded", glueRunId: "jr_2" },
      { pk: "SLOT", sk: "SLOT", wakeup: false },
    ],
    glueRuns: [
      { id: "jr_1", runKey: R1, state: "SUCCEEDED", startedOn: T(3), completedOn: T(14), error: null },
      { id: "jr_2", runKey: R2, state: "SUCCEEDED", startedOn: T(30), completedOn: T(49), error: null },
    ],
    outputs: [
      { prefix: `processed/a/v=${TAG0}/`, rows: 3, markers: [0], unmarked: 0, success: true },
      { prefix: `processed/a/v=${TAG1}/`, rows: 2, markers: [1], unmarked: 0, success: true },
    ],
    rejected: [{ prefix: `processed/rejected/a/v=${TAG0}/`, rows: 1, markers: [], unmarked: 0, success: true }],
    stats: [
      {
        runKey: R1,
        files: [
          {
            uploadId: uid(A, TAG0),
            key: A,
            status: "processed",
            error: null,
            rowsRead: 5,
            rowsProcessed: 3,
            rowsRejected: 1,
            duplicatesRemoved: 1,
            output: `s3://${BUCKET}/processed/a/v=${TAG0}/`,
            rejectedOutput: `s3://${BUCKET}/processed/rejected/a/v=${TAG0}/`,
          },
        ],
      },
      {
        runKey: R2,
        files: [
          {
            uploadId: uid(A, TAG1),
            key: A,
            status: "processed",
            error: null,
            rowsRead: 2,
            rowsProcessed: 2,
            rowsRejected: 0,
            duplicatesRemoved: 0,
            output: `s3://${BUCKET}/processed/a/v=${TAG1}/`,
            rejectedOutput: `s3://${BUCKET}/processed/rejected/a/v=${TAG1}/`,
          },
          {
            uploadId: uid(B, TAG2),
            key: B,
            status: "failed",
            error: "input/b.csv: missing required column(s): status",
            rowsRead: 0,
            rowsProcessed: 0,
            rowsRejected: 0,
            duplicatesRemoved: 0,
            output: null,
            rejectedOutput: null,
          },
        ],
      },
    ],
    quiescence: { reached: true, waitedMs: 3000, notQuiet: [] },
  };
}

type Item = Record<string, unknown>;
type Draft = { -readonly [K in Exclude<keyof SoakState, "ledger" | "stats">]: SoakState[K] } & {
  ledger: Item[];
  stats: Item[];
};

/** The clean state with one change. */
function broken(change: (s: Draft) => void): SoakState {
  const s = structuredClone(cleanState()) as unknown as Draft;
  change(s);
  return s;
}

const ledgerUpload = (s: { ledger: Item[] }, tag: string) => s.ledger.find((i) => i.sk === tag) as Item;
const statsFile = (s: { stats: Item[] }, runKey: string, i: number) =>
  (s.stats.find((x) => x.runKey === runKey) as { files: Item[] }).files[i] as Item;
const invariants = (state: SoakState) => check(state).map((v) => v.invariant);

describe("the soak's checker", () => {
  it("finds nothing wrong in a clean final state", () => {
    expect(check(cleanState())).toEqual([]);
  });

  describe("(a) current version processed exactly once, or failed for its own problem", () => {
    it("a good file's current version that failed", () => {
      const s = broken((s) => Object.assign(ledgerUpload(s, TAG1), { status: "failed", error: "Glue run FAILED" }));
      const v = check(s);
      expect(v.map((x) => x.invariant)).toContain("a");
      expect(v.find((x) => x.invariant === "a")?.message).toContain("good file's current version ended failed");
      // the violation carries the key's history: both puts, both S3 versions, the ledger items, the runs
      expect(v.find((x) => x.invariant === "a")?.history.join("\n")).toMatch(/put #0[\s\S]*put #1[\s\S]*glue: jr_2/);
    });

    it("a current version the ledger never recorded (lost)", () => {
      const s = broken((s) => {
        s.ledger = s.ledger.filter((i) => i.sk !== TAG1);
        s.stats = s.stats.filter((x) => x.runKey !== R2);
        s.outputs = s.outputs.filter((o) => !o.prefix.includes(TAG1));
      });
      expect(check(s).find((x) => x.invariant === "a")?.message).toMatch(/not in the ledger: lost/);
    });

    it("a current version processed by two succeeded Glue runs (one run key started twice)", () => {
      const s = broken((s) => {
        s.glueRuns = [
          ...s.glueRuns,
          { id: "jr_3", runKey: R2, state: "SUCCEEDED", startedOn: T(60), completedOn: T(70), error: null },
        ];
      });
      expect(check(s).find((x) => x.invariant === "a")?.message).toMatch(/processed by 2 succeeded Glue runs/);
    });

    it("a bad file failed with a reason that is not its own problem", () => {
      const s = broken((s) =>
        Object.assign(ledgerUpload(s, TAG2), { error: "Glue run jr_2 FAILED (after 3 attempts)" }),
      );
      expect(check(s).find((x) => x.invariant === "a")?.message).toMatch(/bad file \(missing-column\) ended failed/);
    });

    it("a bad file reported processed", () => {
      const s = broken((s) => Object.assign(ledgerUpload(s, TAG2), { status: "processed", error: null }));
      expect(invariants(s)).toContain("a");
    });
  });

  describe("(b) nothing pending or running after quiescence", () => {
    it("an upload left pending", () => {
      const s = broken((s) => {
        s.ledger.push({
          ...upload(P0, "20261130T100001Z-old", { status: "pending", runKey: null }),
          sk: "20261130T100001Z-old",
        });
      });
      expect(invariants(s)).toContain("b");
    });

    it("a run left running and the slot held", () => {
      const s = broken((s) => {
        Object.assign(s.ledger.find((i) => i.sk === R2) as Item, { state: "running" });
        Object.assign(s.ledger.find((i) => i.pk === "SLOT") as Item, { holder: R2 });
      });
      const v = check(s).filter((x) => x.invariant === "b");
      expect(v.map((x) => x.subject).sort()).toEqual([`run ${R2}`, "run slot"]);
    });

    it("quiescence not reached in time", () => {
      const s = broken((s) => {
        s.quiescence = { reached: false, waitedMs: 600_000, notQuiet: ["ingest queue holds 2 message(s)"] };
      });
      expect(check(s)).toEqual([expect.objectContaining({ invariant: "b", subject: "quiescence" })]);
    });
  });

  describe("(c) never two Glue runs active at once", () => {
    it("a run that started before the previous one ended", () => {
      const s = broken((s) => {
        s.glueRuns = [s.glueRuns[0] as GlueRunEntry, { ...(s.glueRuns[1] as GlueRunEntry), startedOn: T(10) }];
      });
      expect(invariants(s)).toEqual(["c"]);
    });

    it("back-to-back runs (one ends as the next starts) are fine", () => {
      const s = broken((s) => {
        s.glueRuns = [s.glueRuns[0] as GlueRunEntry, { ...(s.glueRuns[1] as GlueRunEntry), startedOn: T(14) }];
      });
      expect(check(s)).toEqual([]);
    });
  });

  describe("(d) outputs match their stats; read = processed + rejected + duplicates", () => {
    it("an output with fewer rows than its stats say", () => {
      const s = broken((s) => {
        s.outputs = s.outputs.map((o) => (o.prefix.includes(TAG0) ? { ...o, rows: 2 } : o));
      });
      expect(check(s)).toEqual([
        expect.objectContaining({ invariant: "d", message: expect.stringMatching(/output has 2 rows, stats say 3/) }),
      ]);
    });

    it("stats whose counts do not add up", () => {
      const s = broken((s) => Object.assign(statsFile(s, R1, 0), { duplicatesRemoved: 0 }));
      const v = check(s).filter((x) => x.invariant === "d");
      expect(v.map((x) => x.message).join("\n")).toMatch(/read 5 ≠ processed 3 \+ rejected 1 \+ duplicates 0/);
    });

    it("a rejected output with more rows than the stats say", () => {
      const s = broken((s) => {
        s.rejected = [{ ...(s.rejected[0] as OutputFolder), rows: 4 }];
      });
      expect(invariants(s)).toEqual(["d"]);
    });

    it("stats that agree with the output but not with the file that was uploaded", () => {
      const s = broken((s) => {
        Object.assign(statsFile(s, R2, 0), { rowsRead: 1, rowsProcessed: 1 });
        Object.assign(ledgerUpload(s, TAG1), { rowsRead: 1, rowsProcessed: 1 });
        s.outputs = s.outputs.map((o) => (o.prefix.includes(TAG1) ? { ...o, rows: 1 } : o));
      });
      expect(check(s).find((x) => x.invariant === "d")?.message).toMatch(/the file had read 2/);
    });
  });

  describe("(e) no output of a superseded version under the current name", () => {
    it("the current version's folder holds the superseded version's rows", () => {
      const s = broken((s) => {
        s.outputs = s.outputs.map((o) => (o.prefix.includes(TAG1) ? { ...o, markers: [0] } : o));
      });
      const v = check(s);
      expect(v.map((x) => x.invariant)).toEqual(["e"]);
      expect(v[0]?.message).toMatch(/current version's name.*put #0 \(a superseded version of this key\)/);
    });

    it("the ledger points the current version at another version's folder", () => {
      const s = broken((s) =>
        Object.assign(ledgerUpload(s, TAG1), { output: `s3://${BUCKET}/processed/a/v=${TAG0}/` }),
      );
      expect(invariants(s)).toContain("e");
    });

    it("an output folder no upload of the workload accounts for", () => {
      const s = broken((s) => {
        s.outputs = [
          ...s.outputs,
          { prefix: "processed/a/v=20991231T000000Z-zz/", rows: 1, markers: [1], unmarked: 0, success: true },
        ];
      });
      expect(invariants(s)).toEqual(["e"]);
    });
  });
});

describe("the soak's workload", () => {
  it("expects a file with one record that is not UTF-8 processed with that record rejected (glue/CONTRACT.md)", () => {
    const spec = put(9, "input/u.csv", "bad-utf8", 5, 2, 1).file;
    expect(isProcessedKind("bad-utf8")).toBe(true);
    expect(isProcessedKind("utf16")).toBe(false);
    expect(expectedCounts(spec)).toEqual({ read: 2, processed: 1, rejected: 1, duplicates: 0 });
    const lines = fileBody(spec).toString("latin1").trimEnd().split("\n");
    expect(lines).toHaveLength(3); // the header and two records
    const notUtf8 = lines.filter((l) => Buffer.from(l, "latin1").toString("utf8").includes("\uFFFD"));
    expect(notUtf8).toHaveLength(1);
  });

  it("checks such a file like a good one: ended failed is a violation of (a)", () => {
    const clean = cleanState();
    // B's put (a missing-column file that failed, as it should) becomes a bad-utf8 file (a copy: P2 is shared)
    const s = {
      ...clean,
      history: clean.history.map((h) =>
        h.op.key === B && h.op.kind === "put"
          ? { ...h, op: { ...h.op, file: { ...h.op.file, kind: "bad-utf8" as const } } }
          : h,
      ),
    };
    expect(check(s).find((x) => x.invariant === "a")?.message).toMatch(
      /a bad-utf8 file's current version ended failed/,
    );
  });

  it("is the same for the same seed, and differs for another", () => {
    const a = planWorkload({ seed: 7, windowMs: 60_000 });
    expect(planWorkload({ seed: 7, windowMs: 60_000 })).toEqual(a);
    expect(planWorkload({ seed: 8, windowMs: 60_000 })).not.toEqual(a);
  });

  it("has every kind of operation even in one minute, and long keys within S3's 1,024 bytes", () => {
    const ops = planWorkload({ seed: 1, windowMs: 60_000 });
    const groups = new Set(ops.map((o) => o.group.replace(/-\d+$/, "")));
    expect([...groups].sort()).toEqual(["burst", "delete", "long-key", "multipart", "storm", "trickle"]);
    const puts = ops.filter((o): o is PutOp => o.kind === "put");
    expect(new Set(puts.map((p) => p.file.kind)).size).toBeGreaterThan(1);
    for (const p of puts.filter((o) => o.group === "long-key")) {
      expect(Buffer.byteLength(p.key, "utf8")).toBeLessThanOrEqual(1024);
      expect(Buffer.byteLength(p.key, "utf8")).toBeGreaterThanOrEqual(1000);
      for (const segment of p.key.split("/")) expect(Buffer.byteLength(segment, "utf8")).toBeLessThanOrEqual(200);
    }
    const multipart = puts.find((p) => p.multipart);
    expect(fileBody((multipart as PutOp).file).length).toBeGreaterThan(5 * 1024 * 1024);
  });
});

describe("csvRecords", () => {
  it("counts quoted commas, quotes and line breaks as one field", () => {
    expect(csvRecords('a,b\n"x, ""y""",2\n"multi\nline",3\n\n')).toEqual([
      ["a", "b"],
      ['x, "y"', "2"],
      ["multi\nline", "3"],
    ]);
  });
});

describe("glueRunsFromLog (the Glue service's own run log)", () => {
  const line = (s: number, jobRunId: string, state: string, message?: string) =>
    JSON.stringify({ t: at(s), jobRunId, state, ...(message ? { message } : {}) });

  it("makes one entry per run, active from its first line to its first terminal state", () => {
    const log = [
      line(0, "jr_a", "STARTING"),
      line(1, "jr_a", "RUNNING"),
      line(9, "jr_a", "SUCCEEDED"),
      line(10, "jr_b", "STARTING"),
      line(11, "jr_b", "WAITING"),
      line(14, "jr_b", "FAILED", "Resource unavailable"),
      line(20, "jr_c", "STARTING"),
      "",
    ].join("\n");
    const runs = glueRunsFromLog(log, new Map([["jr_a", "rk-a"]]));
    expect(runs).toEqual([
      { id: "jr_a", runKey: "rk-a", state: "SUCCEEDED", startedOn: T(0), completedOn: T(9), error: null },
      {
        id: "jr_b",
        runKey: null,
        state: "FAILED",
        startedOn: T(10),
        completedOn: T(14),
        error: "Resource unavailable",
      },
      { id: "jr_c", runKey: null, state: "STARTING", startedOn: T(20), completedOn: null, error: null },
    ]);
  });

  it("feeds (c): a run logged as starting while another is running is two runs at once", () => {
    const log = [
      line(0, "jr_a", "STARTING"),
      line(5, "jr_b", "STARTING"),
      line(9, "jr_a", "SUCCEEDED"),
      line(12, "jr_b", "SUCCEEDED"),
    ];
    const s = broken((s) => {
      s.glueRuns = glueRunsFromLog(
        log.join("\n"),
        new Map([
          ["jr_a", R1],
          ["jr_b", R2],
        ]),
      );
    });
    expect(invariants(s)).toEqual(["c"]);
  });
});
