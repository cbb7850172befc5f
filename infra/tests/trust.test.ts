/**
 * Under `sst dev` (SST's `$dev` true, a personal stage), the Lambda roles keep SST's dev trust (the account may
 * assume them: the local process runs the handler as that role). Deployed stages are checked in app.test.ts (dev)
 * and prod.test.ts. Its own file: one stack per process.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ACCOUNT_ID, type EvaluatedApp, evaluateApp } from "./helpers/app";
import { trustedPrincipals } from "./helpers/iam";

let app: EvaluatedApp;
beforeAll(async () => {
  app = await evaluateApp("alice", { dev: true });
});

describe("trust under sst dev", () => {
  it("lets Lambda and the account assume the handler roles (the live bridge needs it)", () => {
    const roles = app.ofType("aws:iam/role:Role").filter((r) => r.name !== "GlueJobRole");
    expect(roles).toHaveLength(4);
    for (const role of roles) {
      expect(trustedPrincipals(role.inputs.assumeRolePolicy)).toEqual([
        `AWS:arn:aws:iam::${ACCOUNT_ID}:root`,
        "Service:lambda.amazonaws.com",
      ]);
    }
  });
});
