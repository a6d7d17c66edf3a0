// Where the shared test data lives: $DOWNPOUR_DATA, else ../shared/data beside the project root (never copied in).
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root: the nearest directory above this file holding package.json (three levels up from dist/test/support). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

/** The shared data folder (mnist/, pima-diabetes.csv); it may be absent: tests that read it go through sharedData(). */
export function sharedDataDir(): string {
  return process.env.DOWNPOUR_DATA ?? resolve(projectRoot(), "../shared/data");
}

/** Thrown by sharedData() when the shared data is not there: names the folder and the variable that moves it. */
export class MissingSharedDataError extends Error {
  override readonly name = "MissingSharedDataError";
}

/**
 * The path of `relative` (e.g. "mnist", "pima-diabetes.csv") inside the shared data folder. The one policy for
 * real data: a test that needs it calls this inside the test, and fails (never skips) with one clear message
 * when the data is absent.
 */
export function sharedData(relative: string): string {
  const dir = sharedDataDir();
  const path = join(dir, relative);
  if (!existsSync(path)) {
    const source = process.env.DOWNPOUR_DATA !== undefined ? "from $DOWNPOUR_DATA" : "the default, ../shared/data";
    throw new MissingSharedDataError(
      `shared test data missing: ${path} not found. Put mnist/ and pima-diabetes.csv in ${dir} (${source}), ` +
        "or set DOWNPOUR_DATA to a folder that holds them.",
    );
  }
  return path;
}
