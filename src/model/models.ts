// Deprecated re-export stub: the model classes moved to src/api/models.ts. Kept only while src/cli imports this
// path; delete it once src/cli imports ../api/models.js (src/model must not import from src/api).
export * from "../api/models.js";
