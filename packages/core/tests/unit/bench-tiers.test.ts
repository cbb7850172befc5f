/**
 * The simulation's capacity-table syntax (BENCH_TIERS, `bench:capacity --tables`): a malformed table must be refused
 * with the part named, never read as something else — the cost figures in docs/notes/cost.md were made with it.
 */
import { describe, expect, it } from "vitest";
import { capacityText, tiersFromSpec } from "../../bench/sim/tiers.js";
import type { CapacitySettings } from "../../src/config/pipeline.js";

const GiB = 1024 ** 3;
const config: CapacitySettings = {
  tiers: [
    { maxFiles: 10, maxBytes: 1 * GiB, workerType: "G.1X", numberOfWorkers: 2, timeoutMinutes: 30 },
    { maxFiles: 100, maxBytes: 5 * GiB, workerType: "G.1X", numberOfWorkers: 4, backlogWorkers: 8, timeoutMinutes: 90 },
  ],
  maxWorkers: 8,
  executionClass: "STANDARD",
};

describe("tiersFromSpec", () => {
  it("reads max files : workers [/ backlog workers], bytes and timeouts from the config's tier of the same rank", () => {
    expect(tiersFromSpec("1000:2,2500:3,10000:6/12", config)).toEqual({
      tiers: [
        { maxFiles: 1_000, maxBytes: 1 * GiB, workerType: "G.1X", numberOfWorkers: 2, timeoutMinutes: 30 },
        // no "/N": no backlog workers, although the config's tier of this rank has 8
        { maxFiles: 2_500, maxBytes: 5 * GiB, workerType: "G.1X", numberOfWorkers: 3, timeoutMinutes: 90 },
        {
          maxFiles: 10_000,
          maxBytes: 5 * GiB,
          workerType: "G.1X",
          numberOfWorkers: 6,
          backlogWorkers: 12,
          timeoutMinutes: 90,
        },
      ],
      maxWorkers: 12, // raised to the table's largest ask
      executionClass: "STANDARD",
    });
  });

  it("keeps the config's cap when the table asks for less", () => {
    expect(tiersFromSpec("50:2", config).maxWorkers).toBe(8);
  });

  it.each([
    ["50:2:3", /bad tier "50:2:3"/],
    [" 50:2", /bad tier " 50:2"/],
    ["1e3:2", /bad tier "1e3:2"/],
    ["0x10:2", /bad tier "0x10:2"/],
    ["50:2.0", /bad tier "50:2.0"/],
    ["50:", /bad tier "50:"/],
    ["50:2/", /bad tier "50:2\/"/],
    ["50:2/x", /bad tier "50:2\/x"/],
    ["50:-2", /bad tier "50:-2"/],
    ["50:2,,100:3", /bad tier ""/],
    ["0:2", /tier "0:2" needs ≥ 1 file and ≥ 2 workers/],
    ["50:1", /tier "50:1" needs ≥ 1 file and ≥ 2 workers/],
    ["10000:6/5", /tier "10000:6\/5" has fewer workers with uploads waiting/],
    ["2500:3,50:2", /max files must rise tier by tier \(2500, then 50\)/],
    ["50:2,50:3", /max files must rise tier by tier \(50, then 50\)/],
  ])("refuses %j", (spec, message) => {
    expect(() => tiersFromSpec(spec, config)).toThrow(message);
  });
});

describe("capacityText", () => {
  it("prints each tier's workers, with /N where uploads waiting get more, and the cap", () => {
    expect(capacityText(tiersFromSpec("1000:2,10000:6/12", config))).toBe(
      "files → G.1X workers (/N: N when uploads wait behind the run) ≤ 1000 → 2, ≤ 10000 → 6/12, at most 12",
    );
  });
});
