// Running a script in a child process of this runtime (process.execPath), for tests of what keeps a process
// alive: the child is killed once it outlives its limit, and the result says so.
import { execFile } from "node:child_process";
import { tempDir, writeTemp } from "./temp.js";

export interface ChildResult {
  code: number | null;
  /** True when the child was still running at the limit and was killed. */
  killed: boolean;
  stdout: string;
  stderr: string;
}

/** Writes `source` to child.mjs in a new temp folder named from `prefix` and runs it; resolves when it ends. */
export function runChildScript(prefix: string, source: string, limitMs: number): Promise<ChildResult> {
  const path = writeTemp(tempDir(prefix), "child.mjs", source);
  return new Promise((resolve) => {
    execFile(process.execPath, [path], { timeout: limitMs }, (error, stdout, stderr) => {
      const e = error as (Error & { code?: number; killed?: boolean }) | null;
      resolve({ code: e ? (typeof e.code === "number" ? e.code : null) : 0, killed: Boolean(e?.killed), stdout, stderr });
    });
  });
}
