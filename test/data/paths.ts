// Where the shared test data lives: $DOWNPOUR_DATA, else ../shared/data beside the project root (never copied in).
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root: the nearest directory above this file holding package.json (three levels up from dist/test/data). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

/** The shared data folder (mnist/, pima-diabetes.csv). */
export function sharedDataDir(): string {
  return process.env.DOWNPOUR_DATA ?? resolve(projectRoot(), "../shared/data");
}
