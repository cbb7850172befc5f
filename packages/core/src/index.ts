export * from "./config/pipeline.js";
export * from "./manifest/format.js";
export * from "./upload/identity.js";
