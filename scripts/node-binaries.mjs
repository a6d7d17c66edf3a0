// Where the Node binaries are: the machine's own (the first `node` on PATH outside node_modules; inside npm scripts
// plain `node` is the `node` devDependency's Node 24) and Node 24 from that devDependency.
import { existsSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";

/** Node 24, from the `node` devDependency (relative to the project root). */
export const NODE24 = "node_modules/node/bin/node";

/** The machine's node, or undefined when only node_modules holds one. */
export function systemNode() {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir || dir.includes("node_modules")) continue;
    const candidate = join(dir, "node");
    if (existsSync(candidate)) return resolve(candidate);
  }
  return process.execPath.includes("node_modules") ? undefined : process.execPath;
}
