// The check moved to runner/verify.ts (it runs the graph, and graph/ must not depend on runner/ at run time); types only here, for older imports.
export type { OutputDifference, VerifyOptions, VerifyResult } from "../runner/verify";
