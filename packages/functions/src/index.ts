export { handler as batcher } from "./batcher.js";
export { handler as reconciler } from "./reconciler.js";
export { handler as recorder } from "./recorder.js";
export { type FunctionCaller, functionCaller, metrics, resetRuntime, runtime } from "./runtime.js";
export { handler as sweeper } from "./sweeper.js";
