// MNIST, offline, on tiny generated IDX files: verified download through a base-URL list from local servers,
// checksum refusal, raw content stored gzipped, loading, verification and finding (the real files: shared-data.test.ts).
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { fileProblem } from "../../src/data/checksum.js";
import { downloadVerified } from "../../src/data/download.js";
import {
  ChecksumError,
  defaultCacheDir,
  downloadMnist,
  DownloadError,
  findMnist,
  loadMnist,
  MNIST_BASE_URLS,
  MNIST_FILES,
  verifyMnist,
  type DownloadProgress,
} from "../../src/data/index.js";
import { refusedBaseUrl, serveFiles, startServer, type TestServer } from "../support/servers.js";
import { tempDir } from "../support/temp.js";
import { tinyMnist, writeTinyMnist } from "./fixtures.js";

const files = tinyMnist(10, 5);
const names = files.map((f) => f.name);
const served = (name: string) => files.find((f) => f.name === name)?.gz;

/** The first file's content with one pixel changed, gzipped: a valid gzip whose content fails the checksum. */
function corruptedFirst(): Uint8Array {
  const raw = Uint8Array.from(files[0]!.raw);
  raw[16 + 50]! ^= 0xff;
  return gzipSync(raw);
}

describe("downloadVerified from local servers (tiny IDX files, their own checksums)", () => {
  let good: TestServer;
  let missing: TestServer;
  let corrupt: TestServer;
  let silent: TestServer;

  before(async () => {
    const corrupted = corruptedFirst();
    [good, missing, corrupt, silent] = await Promise.all([
      startServer(serveFiles(served)),
      startServer(serveFiles(() => undefined)),
      startServer(serveFiles((name) => (name === names[0] ? corrupted : served(name)))),
      startServer(() => {}), // accepts and never answers
    ]);
  });

  after(() => Promise.all([good, missing, corrupt, silent].map((s) => s?.close())));

  test("the MNIST defaults try the official location first, then the mirrors", () => {
    assert.equal(MNIST_BASE_URLS[0], "http://yann.lecun.com/exdb/mnist/");
    assert.equal(MNIST_BASE_URLS.length, 3);
  });

  test("downloads every file through the list (404 first, then good), verified, with progress", async () => {
    const dir = tempDir("download");
    const progress: DownloadProgress[] = [];
    for (const { name, gz, spec } of files) {
      const url = await downloadVerified(spec, dir, { baseUrls: [missing.baseUrl, good.baseUrl], onProgress: (p) => progress.push(p) });
      assert.equal(url, good.baseUrl + name);
      assert.ok(readFileSync(join(dir, name)).equals(gz), `${name} is stored as served`);
      assert.equal(await fileProblem(join(dir, name), spec), undefined);
      const last = progress.filter((p) => p.file === name).at(-1)!;
      assert.equal(last.receivedBytes, gz.length);
      assert.equal(last.totalBytes, gz.length);
    }
    assert.deepEqual(missing.requests, names.map((n) => `/mnist/${n}`));
    assert.deepEqual(readdirSync(dir).sort(), [...names].sort(), "no temporary files are left");
  });

  test("raw (un-gzipped) content is stored gzipped; a raw body of the wrong size is refused", async () => {
    const dir = tempDir("download-raw");
    const { name, raw, spec } = files[1]!;
    const fetchRaw: typeof fetch = async () => new Response(new Uint8Array(raw));
    assert.equal(await downloadVerified(spec, dir, { baseUrls: ["http://example.invalid/"], fetch: fetchRaw }), `http://example.invalid/${name}`);
    const stored = readFileSync(join(dir, name));
    assert.deepEqual([...stored.subarray(0, 2)], [0x1f, 0x8b]);
    assert.ok(gunzipSync(stored).equals(raw));
    const fetchText: typeof fetch = async () => new Response("<html>moved elsewhere</html>");
    await assert.rejects(downloadVerified(spec, tempDir("download-html"), { baseUrls: ["http://example.invalid/"], fetch: fetchText }), (error: unknown) => {
      assert.ok(error instanceof DownloadError);
      assert.match(error.message, /not a gzip file: the response starts with "<html>moved elsewhere<\/html>"/);
      return true;
    });
  });

  test("a corrupted download is refused with a checksum error and leaves nothing behind", async () => {
    const dir = tempDir("download-corrupt");
    const spec = files[0]!.spec;
    await assert.rejects(downloadVerified(spec, dir, { baseUrls: [corrupt.baseUrl] }), (error: unknown) => {
      assert.ok(error instanceof DownloadError);
      assert.equal(error.attempts.length, 1);
      assert.match(error.message, new RegExp(`cannot download ${spec.name.replaceAll(".", "\\.")}`));
      assert.match(error.message, new RegExp(`checksum mismatch: sha256 of the uncompressed content is [0-9a-f]{64}, expected ${spec.sha256}`));
      return true;
    });
    assert.deepEqual(readdirSync(dir), []);
  });

  test("a corrupt mirror is skipped for the next good one", async () => {
    const dir = tempDir("download-fallback");
    const baseUrls = [corrupt.baseUrl, good.baseUrl];
    assert.equal(await downloadVerified(files[0]!.spec, dir, { baseUrls }), good.baseUrl + names[0]);
    assert.equal(await downloadVerified(files[1]!.spec, dir, { baseUrls }), corrupt.baseUrl + names[1]);
  });

  test("when every URL fails, the error lists what each answered", async () => {
    const refused = await refusedBaseUrl();
    const baseUrls = [missing.baseUrl, refused, silent.baseUrl];
    await assert.rejects(downloadVerified(files[3]!.spec, tempDir("download-fail"), { baseUrls, idleTimeoutMs: 300 }), (error: unknown) => {
      assert.ok(error instanceof DownloadError);
      const problems = error.attempts.map((a) => a.problem);
      assert.equal(problems[0], "HTTP 404 Not Found");
      assert.match(problems[1]!, /ECONNREFUSED|Connection refused/i);
      assert.equal(problems[2], "no data for 300 ms (timed out)");
      for (const { url, problem } of error.attempts) assert.ok(error.message.includes(`${url}: ${problem}`), error.message);
      return true;
    });
  });

  test("downloadMnist checks MNIST's published checksums: tiny files are refused, named", async () => {
    const cacheDir = tempDir("mnist-refused");
    await assert.rejects(downloadMnist({ cacheDir, baseUrls: [good.baseUrl] }), (error: unknown) => {
      assert.ok(error instanceof DownloadError);
      assert.match(error.message, /cannot download train-images-idx3-ubyte\.gz/);
      assert.match(error.message, /the uncompressed content has 7856 bytes, expected 47040016/);
      return true;
    });
    assert.deepEqual(readdirSync(join(cacheDir, "mnist")), []);
  });
});

describe("MNIST files on disk (tiny copies)", () => {
  test("loadMnist: 10/5 samples, x = pixel / 255, one-hot y from the labels", async () => {
    const dir = writeTinyMnist(tempDir("mnist-load"), files);
    const { train, test: testSet } = await loadMnist(dir);
    assert.equal(train.name, "mnist-train");
    assert.equal(testSet.name, "mnist-test");
    for (const [ds, size, imagesFile, first] of [[train, 10, files[0]!, 0], [testSet, 5, files[2]!, 3]] as const) {
      assert.equal(ds.size, size);
      assert.equal(ds.features, 784);
      assert.equal(ds.outputs, 10);
      assert.deepEqual([...ds.labels!], Array.from({ length: size }, (_, i) => (i + first) % 10));
      for (let i = 0; i < size; i++) assert.equal(ds.y.subarray(i * 10, i * 10 + 10).indexOf(1), ds.labels![i]);
      for (const k of [0, 202, size * 784 - 1]) assert.equal(ds.x[k], Math.fround(imagesFile.raw[16 + k]! / 255));
      assert.ok(ds.x.every((v) => v >= 0 && v <= 1));
    }
  });

  test("loadMnist names images and labels files that disagree", async () => {
    const dir = writeTinyMnist(tempDir("mnist-mismatch"), tinyMnist(10, 5));
    writeFileSync(join(dir, "t10k-labels-idx1-ubyte.gz"), tinyMnist(10, 4)[3]!.gz);
    await assert.rejects(loadMnist(dir), /t10k-images-idx3-ubyte\.gz holds 5 images but .*t10k-labels-idx1-ubyte\.gz holds 4 labels/);
  });

  test("verifyMnist names every file that is missing or corrupt", async () => {
    const dir = tempDir("mnist-verify");
    const labels = files[3]!.gz;
    writeFileSync(join(dir, "t10k-labels-idx1-ubyte.gz"), labels.subarray(0, labels.length >> 1));
    writeFileSync(join(dir, "train-labels-idx1-ubyte.gz"), files[1]!.gz);
    await assert.rejects(verifyMnist(dir), (error: unknown) => {
      assert.ok(error instanceof ChecksumError);
      assert.match(error.message, /train-images-idx3-ubyte\.gz: missing/);
      assert.match(error.message, /train-labels-idx1-ubyte\.gz: checksum mismatch: the uncompressed content has 18 bytes, expected 60008/);
      assert.match(error.message, /t10k-labels-idx1-ubyte\.gz: truncated: the gzip stream ends early/);
      return true;
    });
  });

  test("defaultCacheDir follows DOWNPOUR_CACHE, then XDG_CACHE_HOME, then ~/.cache", () => {
    assert.equal(defaultCacheDir({ DOWNPOUR_CACHE: "/c/dp", XDG_CACHE_HOME: "/x" }), "/c/dp");
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "/x" }), "/x/downpour");
    assert.match(defaultCacheDir({}), /\.cache[/\\]downpour$/);
  });

  test("findMnist prefers the cache, then $DOWNPOUR_DATA/mnist, else undefined", () => {
    const emptyCache = tempDir("mnist-find");
    const data = tempDir("mnist-find-data");
    mkdirSync(join(data, "mnist"));
    for (const { name } of MNIST_FILES) writeFileSync(join(data, "mnist", name), "");
    assert.equal(findMnist({ DOWNPOUR_CACHE: emptyCache }), undefined);
    assert.equal(findMnist({ DOWNPOUR_CACHE: emptyCache, DOWNPOUR_DATA: data }), join(data, "mnist"));
    const fullCache = tempDir("mnist-find-full");
    writeTinyMnist(join(fullCache, "mnist"), files);
    assert.equal(findMnist({ DOWNPOUR_CACHE: fullCache, DOWNPOUR_DATA: data }), join(fullCache, "mnist"));
    assert.equal(existsSync(join(emptyCache, "mnist")), false, "findMnist creates nothing");
  });
});
