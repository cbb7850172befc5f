/**
 * Untrusted text never reaches an operator's terminal raw (issue 12): keys and error texts are escaped in human
 * output, `--json` stays exact, and a closed pipe (`ingest status | head`) ends quietly.
 */
import { spawnSync } from "node:child_process";
import { EventEmitter } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { UploadRecord } from "@ingest/core";
import { describe, expect, it } from "vitest";
import { exitQuietlyOnEpipe, printable } from "../../src/output.js";
import { filesTable, renderStatus, type Snapshot } from "../../src/status.js";

const ROOT = path.resolve(import.meta.dirname, "../../../..");
const HOSTILE_KEY = "input/\u001b]8;;http://evil\u0007click\u001b]8;;\u0007\n\u001b[2J\u009b31m\u202eevil\u007f.csv";
const HOSTILE_ERROR = 'header "\u001b[31mred\u001b[0m\r\nFAKE: all good" is not the expected one';

describe("printable", () => {
  it.each([
    ["a\nb", "a\\nb"],
    ["a\r\tb", "a\\r\\tb"],
    ["\u001b[31mred", "\\x1b[31mred"],
    ["\u0000\u0007\u007f", "\\x00\\x07\\x7f"],
    ["\u009b31m\u0085", "\\x9b31m\\x85"],
    ["\u202eevil\u2066\u2028", "\\u202eevil\\u2066\\u2028"],
    ["C:\\temp", "C:\\\\temp"],
    ["plain é 日本 a.csv", "plain é 日本 a.csv"],
  ])("%j → %s", (raw, shown) => {
    expect(printable(raw)).toBe(shown);
  });

  it("leaves no control, C1 or bidi character and no newline in anything it returns", () => {
    const everything = Array.from({ length: 0x3000 }, (_, i) => String.fromCodePoint(i)).join("");
    // biome-ignore lint/suspicious/noControlCharactersInRegex: checking for control characters is the point
    expect(printable(everything)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/);
  });
});

const record = (over: Partial<UploadRecord>) =>
  ({
    key: HOSTILE_KEY,
    status: "failed",
    runKey: "r1",
    versionTag: "t",
    runs: 1,
    rowsProcessed: null,
    rowsRejected: null,
    output: null,
    error: HOSTILE_ERROR,
    ...over,
  }) as UploadRecord;

describe("status output", () => {
  it("escapes hostile keys and error texts: no ESC reaches the terminal, one upload per line", () => {
    const text = filesTable([record({})]);
    expect(text).not.toContain("\u001b");
    expect(text).not.toContain("\u009b");
    expect(text).not.toContain("\r");
    expect(text.split("\n")).toHaveLength(2); // header + one upload
    expect(text).toContain("input/\\x1b]8;;http://evil\\x07click");
    expect(text).toContain('error: header "\\x1b[31mred\\x1b[0m\\r\\nFAKE: all good"');
  });

  it("escapes the whole status screen, and the JSON stays the exact ledger record", () => {
    const snapshot: Snapshot = {
      at: "",
      slot: { holder: null, takenAt: null, wakeup: false, launched: false, launchedAt: null },
      runs: [],
      uploads: [record({})],
      ingestQueue: { waiting: 0, inFlight: 0 },
      dlq: { ingest: 0, recorder: 0 },
    };
    const screen = renderStatus(snapshot, { kind: "twin", stage: "local", bucket: "b" });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: checking for control characters is the point
    expect(screen).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(JSON.parse(JSON.stringify(snapshot)).uploads[0].key).toBe(HOSTILE_KEY);
  });
});

describe("a closed stdout", () => {
  it("ends the command with exit 0 on EPIPE and rethrows any other write error", () => {
    const stream = new EventEmitter();
    const exits: number[] = [];
    exitQuietlyOnEpipe(stream, (code) => exits.push(code));
    stream.emit("error", Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    expect(exits).toEqual([0]);
    expect(() => stream.emit("error", Object.assign(new Error("disk"), { code: "EIO" }))).toThrow("disk");
  });

  it("`… | head -1` gets its line and the writer exits 0 with nothing on stderr (a real pipe)", () => {
    const writer = [
      `import { exitQuietlyOnEpipe } from ${JSON.stringify(path.join(ROOT, "packages/cli/src/output.ts"))};`,
      "exitQuietlyOnEpipe(process.stdout);",
      "const line = 'x'.repeat(200) + '\\n';",
      "const more = () => { while (process.stdout.write(line)) {} process.stdout.once('drain', more); };",
      "more();",
    ].join("\n");
    const file = path.join(mkdtempSync(path.join(tmpdir(), "epipe-")), "writer.ts");
    writeFileSync(file, writer);
    const tsx = path.join(ROOT, "node_modules/.bin/tsx");
    const script = `${JSON.stringify(tsx)} ${JSON.stringify(file)} | head -1 >/dev/null; echo "writer=\${PIPESTATUS[0]}"`;
    const result = spawnSync("bash", ["-c", script], { encoding: "utf8", timeout: 30_000 });
    expect(result.stdout.trim()).toBe("writer=0");
    expect(result.stderr).not.toMatch(/EPIPE|Unhandled|Error/);
  });
});
