/** Runs a handler as its principal (its own credentials, see principals.ts) and with the `handlerCrash` fault. */
import type { FaultDice } from "./config.js";
import { type Invocation, invocationScope } from "./invocations.js";
import { credentialsOf, type Principal } from "./principals.js";

/** How the functions package scopes a caller (`functionCaller.run` of @ingest/functions). */
export type CallerScope = <R>(
  caller: {
    name: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
    sourceQueue?: { url: string; visibilityTimeoutSeconds: number };
  },
  fn: () => R,
) => R;

export function asPrincipal<A extends unknown[], R>(
  principal: Principal,
  handler: (...args: A) => Promise<R>,
  scope: CallerScope,
  dice: FaultDice,
  /** The queue a consumer reads (its crash lease changes visibility there). */
  sourceQueue?: { url: string; visibilityTimeoutSeconds: number },
): (...args: A) => Promise<R> {
  const caller = { name: principal, credentials: credentialsOf(principal), ...(sourceQueue ? { sourceQueue } : {}) };
  return (...args: A) => {
    const inv: Invocation = { principal, crashed: false };
    return invocationScope.run(inv, () =>
      scope(caller, () => {
        const work = handler(...args);
        if (!dice.roll("handlerCrash", false)) return work;
        const at = dice.uniform("handlerCrash", dice.setting("handlerCrashWithinMs"));
        return new Promise<R>((resolve, reject) => {
          const timer = setTimeout(() => {
            inv.crashed = true;
            dice.count("handlerCrash");
            reject(new Error(`injected crash: the ${principal} invocation died after ${Math.round(at)} ms`));
          }, at);
          work.then(
            (v) => {
              clearTimeout(timer);
              resolve(v);
            },
            (e: unknown) => {
              clearTimeout(timer);
              reject(e);
            },
          );
        });
      }),
    );
  };
}
