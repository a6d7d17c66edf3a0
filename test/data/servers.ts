// Moved to test/support/servers.ts (shared by every suite); this re-export keeps the old import path working.
export * from "../support/servers.js";
