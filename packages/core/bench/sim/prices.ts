/** The simulation prices with the same table the CLI's per-run Glue cost uses: one place, `src/config/prices.ts`. */
export { PRICES } from "../../src/config/prices.js";
