// Deprecated re-export stub: saveModel/loadModel moved to src/api/persist.ts (node-only). Kept only while src/cli
// imports this path; delete it once src/cli imports ../api/persist.js (src/model must not import from src/api).
export { loadModel, saveModel } from "../api/persist.js";
