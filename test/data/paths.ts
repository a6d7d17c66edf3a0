// Moved to test/support/paths.ts (shared by every suite); this re-export keeps the old import path working.
export * from "../support/paths.js";
