/** uploadOutputName with literal expectations (identity.ts): exact names for ordinary and awkward keys. */
import { describe, expect, it } from "vitest";
import { MAX_OUTPUT_NAME_BYTES, normalizeEtag, uploadOutputName } from "../../src/upload/identity.js";

const TAG = "20260401T100000Z-e1";

describe("uploadOutputName", () => {
  it.each([
    ["input/sales/a.csv", `sales/a/v=${TAG}`],
    ["input/a.CSV", `a%2ECSV/v=${TAG}`],
    ["input/a.txt", `a.txt/v=${TAG}`],
    ["input/rejected/a.csv", `rejected/a/v=${TAG}`],
    ["input/tab\there.csv", `tab%09here/v=${TAG}`],
    ["input/a//b.csv", `a/%2F/b/v=${TAG}`],
    ["input/.hidden/_x.csv", `%2Ehidden/%5Fx/v=${TAG}`],
  ])("%s → %s", (key, name) => {
    expect(uploadOutputName({ key, versionTag: TAG })).toBe(name);
  });

  it("keeps a name of exactly MAX_OUTPUT_NAME_BYTES; one byte more is hashed", () => {
    expect(MAX_OUTPUT_NAME_BYTES).toBe(512);
    const stem = "a".repeat(512);
    expect(uploadOutputName({ key: `input/${stem}.csv`, versionTag: TAG })).toBe(`${stem}/v=${TAG}`);
    expect(uploadOutputName({ key: `input/${stem}b.csv`, versionTag: TAG })).toMatch(/^%7E[0-9a-f]{64}\/v=/);
  });
});

describe("normalizeEtag", () => {
  it("drops quotes and a leading weak marker only", () => {
    expect(normalizeEtag('W/"abc"')).toBe("abc");
    expect(normalizeEtag('"abW/c"')).toBe("abW/c");
  });
});
