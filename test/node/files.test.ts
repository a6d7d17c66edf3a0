// Atomic writes of src/node/files.ts: the registry of temp files in progress, and removeLiveTempFiles() (what the
// CLI's signal handler calls) leaving no partial file behind while the target keeps its old contents.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { test } from "node:test";
import { AtomicFile, liveTempPaths, removeLiveTempFiles, writeFileAtomic } from "../../src/node/files.js";
import { tempDir } from "../support/temp.js";

const dir = tempDir("node-files");

test("an open AtomicFile is listed as live until commit, and removeLiveTempFiles removes its temp file", async () => {
  const target = join(dir, "model.dpnn");
  writeFileSync(target, "old");
  const file = await AtomicFile.create(target);
  await file.write("half of the new cont");
  const live = liveTempPaths();
  assert.equal(live.length, 1);
  assert.deepEqual(readdirSync(dir).sort(), [basename(live[0]!), "model.dpnn"].sort(), "the temp file is beside the target");
  removeLiveTempFiles();
  assert.deepEqual(readdirSync(dir), ["model.dpnn"], "only the target is left");
  assert.equal(readFileSync(target, "utf8"), "old", "the target keeps its old contents");
  assert.deepEqual(liveTempPaths(), []);
  await file.abort();
});

test("commit and abort take the temp file off the list; writeFileAtomic leaves none", async () => {
  const committed = await AtomicFile.create(join(dir, "a.txt"));
  const aborted = await AtomicFile.create(join(dir, "b.txt"));
  assert.equal(liveTempPaths().length, 2);
  await committed.write("a");
  await committed.commit();
  await aborted.abort();
  assert.deepEqual(liveTempPaths(), []);
  await writeFileAtomic(join(dir, "c.txt"), "c");
  assert.deepEqual(liveTempPaths(), []);
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith(".")), []);
});

test("a temp file that cannot be created is not listed", async () => {
  await assert.rejects(AtomicFile.create(join(dir, "no-such-folder", "x.txt")), { code: "ENOENT" });
  assert.deepEqual(liveTempPaths(), []);
});
