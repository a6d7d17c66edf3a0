// MNIST, offline: download through a base-URL list from local servers, checksum refusal, cache reuse, and loading.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import {
  ChecksumError,
  defaultCacheDir,
  downloadMnist,
  DownloadError,
  findMnist,
  loadMnist,
  MNIST_BASE_URLS,
  MNIST_FILES,
  readIdx,
  verifyMnist,
  type DownloadProgress,
} from "../../src/data/index.js";
import { sharedDataDir } from "./paths.js";
import { refusedBaseUrl, serveFiles, startServer, type TestServer } from "./servers.js";
import { tempDir } from "./temp.js";

const shared = join(sharedDataDir(), "mnist");
const names = MNIST_FILES.map((f) => f.name);
const readShared = (name: string) => (names.includes(name) ? readFileSync(join(shared, name)) : undefined);

function histogram(labels: ArrayLike<number>): number[] {
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  return counts;
}

/** The real train images with one pixel changed, re-gzipped: a valid gzip whose content fails the checksum. */
function corruptedTrainImages(): Uint8Array {
  const raw = gunzipSync(readFileSync(join(shared, "train-images-idx3-ubyte.gz")));
  raw[16 + 5000]! ^= 0xff;
  return gzipSync(raw, { level: 1 });
}

describe("downloadMnist from local servers", () => {
  let good: TestServer;
  let missing: TestServer;
  let corrupt: TestServer;
  let silent: TestServer;
  const cacheDir = tempDir("mnist-cache");

  before(async () => {
    const corrupted = corruptedTrainImages();
    [good, missing, corrupt, silent] = await Promise.all([
      startServer(serveFiles(readShared)),
      startServer(serveFiles(() => undefined)),
      startServer(serveFiles((name) => (name === "train-images-idx3-ubyte.gz" ? corrupted : readShared(name)))),
      startServer(() => {}), // accepts and never answers
    ]);
  });

  after(() => Promise.all([good, missing, corrupt, silent].map((s) => s?.close())));

  test("the defaults try the official location first, then the mirrors", () => {
    assert.equal(MNIST_BASE_URLS[0], "http://yann.lecun.com/exdb/mnist/");
    assert.equal(MNIST_BASE_URLS.length, 3);
  });

  test("downloads every file through the list (404 first, then good), verified", async () => {
    const progress: DownloadProgress[] = [];
    const result = await downloadMnist({ cacheDir, baseUrls: [missing.baseUrl, good.baseUrl], onProgress: (p) => progress.push(p) });
    assert.equal(result.dir, join(cacheDir, "mnist"));
    assert.deepEqual(result.downloaded, names.map((file) => ({ file, url: good.baseUrl + file })));
    assert.deepEqual(result.present, []);
    assert.deepEqual(missing.requests, names.map((n) => `/mnist/${n}`));
    assert.deepEqual(readdirSync(result.dir).sort(), [...names].sort(), "no temporary files are left");
    await verifyMnist(result.dir);
    const last = progress.filter((p) => p.file === names[0]).at(-1)!;
    assert.equal(last.receivedBytes, last.totalBytes);
    assert.equal(last.receivedBytes, readShared(names[0]!)!.length);
  });

  test("a second call downloads nothing", async () => {
    const requestsBefore = good.requests.length;
    const result = await downloadMnist({ cacheDir, baseUrls: [good.baseUrl] });
    assert.deepEqual(result.downloaded, []);
    assert.deepEqual(result.present, names);
    assert.equal(good.requests.length, requestsBefore);
  });

  test("a corrupt cached file is fetched again; raw (un-gzipped) content is stored gzipped", async () => {
    const name = "t10k-labels-idx1-ubyte.gz";
    const path = join(cacheDir, "mnist", name);
    writeFileSync(path, gzipSync("not mnist"));
    const rawLabels = gunzipSync(readShared(name)!);
    const fetchRaw: typeof fetch = async () => new Response(rawLabels);
    const result = await downloadMnist({ cacheDir, baseUrls: ["http://example.invalid/"], fetch: fetchRaw });
    assert.deepEqual(result.downloaded, [{ file: name, url: `http://example.invalid/${name}` }]);
    assert.deepEqual([...readFileSync(path).subarray(0, 2)], [0x1f, 0x8b]);
    await verifyMnist(join(cacheDir, "mnist"));
  });

  test("a corrupted download is refused with a checksum error and leaves nothing in the cache", async () => {
    const emptyCache = tempDir("mnist-corrupt");
    await assert.rejects(downloadMnist({ cacheDir: emptyCache, baseUrls: [corrupt.baseUrl] }), (error: unknown) => {
      assert.ok(error instanceof DownloadError);
      assert.equal(error.attempts.length, 1);
      assert.match(error.message, /cannot download train-images-idx3-ubyte\.gz/);
      assert.match(error.message, /checksum mismatch: sha256 of the uncompressed content is [0-9a-f]{64}, expected ba891046/);
      return true;
    });
    assert.deepEqual(readdirSync(join(emptyCache, "mnist")), []);
  });

  test("a corrupt mirror is skipped for the next good one", async () => {
    const result = await downloadMnist({ cacheDir: tempDir("mnist-fallback"), baseUrls: [corrupt.baseUrl, good.baseUrl] });
    assert.equal(result.downloaded[0]!.url, good.baseUrl + names[0]);
    assert.equal(result.downloaded[1]!.url, corrupt.baseUrl + names[1]);
  });

  test("when every URL fails, the error lists what each answered", async () => {
    const refused = await refusedBaseUrl();
    const baseUrls = [missing.baseUrl, refused, silent.baseUrl];
    await assert.rejects(downloadMnist({ cacheDir: tempDir("mnist-fail"), baseUrls, idleTimeoutMs: 300 }), (error: unknown) => {
      assert.ok(error instanceof DownloadError);
      const problems = error.attempts.map((a) => a.problem);
      assert.equal(problems[0], "HTTP 404 Not Found");
      assert.match(problems[1]!, /ECONNREFUSED|Connection refused/i);
      assert.equal(problems[2], "no data for 300 ms (timed out)");
      for (const { url, problem } of error.attempts) assert.ok(error.message.includes(`${url}: ${problem}`), error.message);
      return true;
    });
  });

  test("loadMnist on the download: 60000/10000 samples with the label histograms of the label files", async () => {
    const dir = join(cacheDir, "mnist");
    const { train, test: testSet } = await loadMnist(dir);
    assert.equal(train.name, "mnist-train");
    assert.equal(testSet.name, "mnist-test");
    for (const [ds, size, labelsFile] of [[train, 60000, "train-labels-idx1-ubyte.gz"], [testSet, 10000, "t10k-labels-idx1-ubyte.gz"]] as const) {
      assert.equal(ds.size, size);
      assert.equal(ds.features, 784);
      assert.equal(ds.outputs, 10);
      const counts = histogram(ds.labels!);
      assert.deepEqual(counts, histogram((await readIdx(join(shared, labelsFile))).data));
      assert.equal(counts.reduce((a, b) => a + b, 0), size);
      assert.ok(counts.every((c) => c > size / 20), `every digit is common: ${counts}`);
      const hot = Array.from({ length: size }, (_, i) => ds.y.subarray(i * 10, i * 10 + 10).indexOf(1));
      assert.deepEqual(histogram(hot), counts);
    }
    const images = await readIdx(join(dir, "t10k-images-idx3-ubyte.gz"));
    for (const k of [0, 202, 7_839_999, 1_234_567]) assert.equal(testSet.x[k], Math.fround(images.data[k]! / 255));
    assert.ok(testSet.x.every((v) => v >= 0 && v <= 1));
  });
});

describe("MNIST files on disk", () => {
  test("the shared copy verifies; a corrupt or missing file is named", async () => {
    await verifyMnist(shared);
    const dir = tempDir("mnist-verify");
    writeFileSync(join(dir, "t10k-labels-idx1-ubyte.gz"), readShared("t10k-labels-idx1-ubyte.gz")!.subarray(0, 100));
    await assert.rejects(verifyMnist(dir), (error: unknown) => {
      assert.ok(error instanceof ChecksumError);
      assert.match(error.message, /train-images-idx3-ubyte\.gz: missing/);
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
    assert.equal(findMnist({ DOWNPOUR_CACHE: emptyCache }), undefined);
    assert.equal(findMnist({ DOWNPOUR_CACHE: emptyCache, DOWNPOUR_DATA: sharedDataDir() }), shared);
    const fullCache = tempDir("mnist-find-full");
    mkdirSync(join(fullCache, "mnist"));
    for (const name of names) writeFileSync(join(fullCache, "mnist", name), "");
    assert.equal(findMnist({ DOWNPOUR_CACHE: fullCache, DOWNPOUR_DATA: sharedDataDir() }), join(fullCache, "mnist"));
    assert.equal(existsSync(join(emptyCache, "mnist")), false, "findMnist creates nothing");
  });
});
