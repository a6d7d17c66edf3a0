// Model files on disk: write/read round trip, atomic replacement, and cleanup when a write fails.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ModelFileError, encodeModel, readModelFile, writeModelFile } from "../../src/model/file/index.js";
import { bitsOf, sampleContents } from "./fixtures.js";

let root = "";
let count = 0;

/** A fresh empty directory under the suite's temp root. */
async function freshDir(): Promise<string> {
  const dir = join(root, `case-${++count}`);
  await mkdir(dir);
  return dir;
}

async function assertRejectsWith(promise: Promise<unknown>, patterns: RegExp[]): Promise<ModelFileError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail("expected a rejection"),
    (error: unknown) => (caught = error),
  );
  assert.ok(caught instanceof ModelFileError, `expected ModelFileError, got ${caught}`);
  for (const pattern of patterns) assert.match(caught.message, pattern);
  return caught;
}

describe("model files on disk", () => {
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "downpour-model-file-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("write then read round-trips and leaves only the target in the directory", async () => {
    const dir = await freshDir();
    const path = join(dir, "net.dpnn");
    const contents = sampleContents();
    await writeModelFile(path, contents);
    assert.deepEqual(await readdir(dir), ["net.dpnn"]);
    assert.deepEqual(new Uint8Array(await readFile(path)), encodeModel(contents));
    const read = await readModelFile(path);
    assert.equal(read.kind, contents.kind);
    assert.deepEqual(read.meta, contents.meta);
    assert.deepEqual(read.tensors.map((t) => bitsOf(t.data)), contents.tensors.map((t) => bitsOf(t.data)));
  });

  test("writing over an existing file replaces it", async () => {
    const dir = await freshDir();
    const path = join(dir, "net.dpnn");
    await writeModelFile(path, sampleContents());
    const next = sampleContents();
    next.meta.step = 1300;
    await writeModelFile(path, next);
    assert.equal((await readModelFile(path)).meta.step, 1300);
    assert.deepEqual(await readdir(dir), ["net.dpnn"]);
  });

  test("contents that fail validation leave the existing file intact and no temp file behind", async () => {
    const dir = await freshDir();
    const path = join(dir, "net.dpnn");
    await writeModelFile(path, sampleContents());
    const before = await readFile(path);
    const bad = sampleContents();
    bad.tensors[1]!.name = "w1";
    await assertRejectsWith(writeModelFile(path, bad), [/cannot encode model for .*net\.dpnn/, /repeats "w1"/]);
    assert.deepEqual(await readFile(path), before);
    assert.deepEqual(await readdir(dir), ["net.dpnn"]);
  });

  test("a failed rename (target is a directory) removes the temp file and keeps the directory", async () => {
    const dir = await freshDir();
    const path = join(dir, "net.dpnn");
    await mkdir(path);
    await writeFile(join(path, "keep"), "x");
    const error = await assertRejectsWith(writeModelFile(path, sampleContents()), [/cannot write model file .*net\.dpnn/]);
    assert.ok(error.cause instanceof Error, "keeps the file system error as cause");
    assert.deepEqual(await readdir(dir), ["net.dpnn"]);
    assert.deepEqual(await readdir(path), ["keep"]);
  });

  test("writing into a missing directory rejects and creates nothing", async () => {
    const dir = await freshDir();
    const missing = join(dir, "missing");
    await assertRejectsWith(writeModelFile(join(missing, "net.dpnn"), sampleContents()), [/cannot write model file .*missing.*net\.dpnn/]);
    assert.deepEqual(await readdir(dir), []);
    await assert.rejects(stat(missing));
  });

  test("reading a missing file rejects naming the path, with the system error as cause", async () => {
    const path = join(await freshDir(), "absent.dpnn");
    const error = await assertRejectsWith(readModelFile(path), [/cannot read model file .*absent\.dpnn/]);
    assert.equal((error.cause as NodeJS.ErrnoException).code, "ENOENT");
  });

  test("reading a corrupted file names the path", async () => {
    const path = join(await freshDir(), "net.dpnn");
    const bytes = encodeModel(sampleContents());
    bytes[bytes.length - 10]! ^= 1;
    await writeFile(path, bytes);
    const error = await assertRejectsWith(readModelFile(path), [/is corrupted: checksum mismatch/]);
    assert.equal(error.file, path);
    assert.ok(error.message.includes(path));
  });
});
