export * from "./errors.js";
export * from "./output.js";
export * from "./redrive.js";
export * from "./status.js";
export * from "./target.js";
export * from "./upload.js";
