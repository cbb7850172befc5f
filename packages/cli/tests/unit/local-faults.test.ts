/** `ingest local up --faults <profile|file.json> [--seed n]`: checked before the twin starts. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { faultsOption } from "../../src/local.js";

describe("--faults", () => {
  const dir = mkdtempSync(join(tmpdir(), "ingest-faults-"));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it("takes a profile with a seed, or nothing", () => {
    expect(faultsOption(undefined, undefined)).toBeUndefined();
    expect(faultsOption("chaos", 9)).toMatchObject({ seed: 9, rates: { lostAnswer: 0.05 } });
    expect(faultsOption("aws", undefined)?.seed).toBe(1);
  });

  it("takes a JSON config file; its own seed wins over --seed", () => {
    const p = file("ok.json", '{"seed": 4, "rates": {"gsiLag": 1}, "gsiLagMs": 500}');
    expect(faultsOption(p, 9)).toEqual({ seed: 4, rates: { gsiLag: 1 }, gsiLagMs: 500 });
    expect(faultsOption(file("noseed.json", '{"rates": {}}'), 9)?.seed).toBe(9);
  });

  it("refuses bad input with a message naming the file or profile and the reason", () => {
    expect(() => faultsOption("nope", undefined)).toThrow(/--faults nope: unknown fault profile "nope"/);
    expect(() => faultsOption(file("bad.json", "{"), undefined)).toThrow(/bad\.json: cannot read a JSON fault config/);
    expect(() => faultsOption(file("norates.json", "{}"), undefined)).toThrow(/needs a "rates" object/);
    expect(() => faultsOption(file("rate.json", '{"rates": {"throttle": 3}}'), undefined)).toThrow(
      /rate\.json: fault rate of throttle must be a number in \[0, 1\], got 3/,
    );
  });
});
