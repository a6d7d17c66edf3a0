// Moved to test/support/temp.ts (shared by every suite); this re-export keeps the old import path working.
export * from "../support/temp.js";
