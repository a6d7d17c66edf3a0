// The real data, read from ../shared/data (or $DOWNPOUR_DATA): Pima and MNIST parse, verify, download and load as
// published. The few tests that need it; when it is absent they fail, naming the folder and the variable.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import {
  downloadMnist,
  loadMnist,
  MNIST_FILES,
  readCsv,
  readCsvRows,
  readIdx,
  readIdxRecords,
  verifyMnist,
  type DownloadProgress,
} from "../../src/data/index.js";
import { sharedData } from "../support/paths.js";
import { serveFiles, startServer, type TestServer } from "../support/servers.js";
import { tempDir } from "../support/temp.js";

/** Reading all of MNIST (55 MB uncompressed, several times) takes seconds; far less than this. */
const SLOW = { timeout: 120_000 };
const names = MNIST_FILES.map((f) => f.name);

function histogram(labels: ArrayLike<number>): number[] {
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  return counts;
}

describe("the shared Pima file", () => {
  test("768 rows of 8 features, 500 zeros and 268 ones; rows stream with their line numbers", SLOW, async () => {
    const pima = sharedData("pima-diabetes.csv");
    const ds = await readCsv(pima, { classes: 2 });
    assert.equal(ds.size, 768);
    assert.equal(ds.features, 8);
    assert.deepEqual(histogram(ds.labels!).slice(0, 2), [500, 268]);
    assert.deepEqual([...ds.x.subarray(0, 8)], [6, 148, 72, 35, 0, 33.6, 0.627, 50].map(Math.fround));
    let rows = 0;
    for await (const { line, values } of readCsvRows(pima)) {
      assert.equal(line, ++rows);
      assert.equal(values.length, 9);
    }
    assert.equal(rows, 768);
  });
});

describe("the shared MNIST files", () => {
  test("they verify against the published checksums", SLOW, async () => {
    await verifyMnist(sharedData("mnist"));
  });

  test("t10k images are 10000x28x28, labels all digits; streaming chunks equal the whole read", SLOW, async () => {
    const images = join(sharedData("mnist"), "t10k-images-idx3-ubyte.gz");
    const whole = await readIdx(images);
    assert.deepEqual(whole.dims, [10000, 28, 28]);
    const labels = await readIdx(join(sharedData("mnist"), "t10k-labels-idx1-ubyte.gz"));
    assert.deepEqual(labels.dims, [10000]);
    assert.ok(labels.data.every((label) => label <= 9));
    const streamed = new Uint8Array(whole.data.length);
    let next = 0;
    for await (const chunk of readIdxRecords(images, { recordsPerChunk: 777 })) {
      assert.equal(chunk.index, next);
      streamed.set(chunk.data, chunk.index * 784);
      next += chunk.count;
    }
    assert.equal(next, 10000);
    assert.ok(Buffer.from(streamed).equals(Buffer.from(whole.data)));
  });

  test("loadMnist: 60000/10000 samples with the label histograms of the label files", SLOW, async () => {
    const dir = sharedData("mnist");
    const { train, test: testSet } = await loadMnist(dir);
    for (const [ds, size, labelsFile] of [[train, 60000, "train-labels-idx1-ubyte.gz"], [testSet, 10000, "t10k-labels-idx1-ubyte.gz"]] as const) {
      assert.equal(ds.size, size);
      assert.equal(ds.features, 784);
      const counts = histogram(ds.labels!);
      assert.deepEqual(counts, histogram((await readIdx(join(dir, labelsFile))).data));
      assert.ok(counts.every((c) => c > size / 20), `every digit is common: ${counts}`);
    }
    const images = await readIdx(join(dir, "t10k-images-idx3-ubyte.gz"));
    for (const k of [0, 202, 7_839_999, 1_234_567]) assert.equal(testSet.x[k], Math.fround(images.data[k]! / 255));
  });
});

describe("downloadMnist of the shared files from local servers", () => {
  let good: TestServer;
  let missing: TestServer;
  const cacheDir = tempDir("mnist-cache");
  const readShared = (name: string) => (names.includes(name) ? readFileSync(join(sharedData("mnist"), name)) : undefined);

  before(async () => {
    sharedData("mnist");
    [good, missing] = await Promise.all([startServer(serveFiles(readShared)), startServer(serveFiles(() => undefined))]);
  });

  after(() => Promise.all([good, missing].map((s) => s?.close())));

  test("downloads all four through the list (404 first), verified; a second call downloads nothing", SLOW, async () => {
    const progress: DownloadProgress[] = [];
    const result = await downloadMnist({ cacheDir, baseUrls: [missing.baseUrl, good.baseUrl], onProgress: (p) => progress.push(p) });
    assert.equal(result.dir, join(cacheDir, "mnist"));
    assert.deepEqual(result.downloaded, names.map((file) => ({ file, url: good.baseUrl + file })));
    assert.deepEqual(result.present, []);
    assert.deepEqual(readdirSync(result.dir).sort(), [...names].sort(), "no temporary files are left");
    await verifyMnist(result.dir);
    const last = progress.filter((p) => p.file === names[0]).at(-1)!;
    assert.equal(last.receivedBytes, readShared(names[0]!)!.length);
    const requestsBefore = good.requests.length;
    const again = await downloadMnist({ cacheDir, baseUrls: [good.baseUrl] });
    assert.deepEqual(again.downloaded, []);
    assert.deepEqual(again.present, names);
    assert.equal(good.requests.length, requestsBefore);
  });

  test("a corrupt cached file is fetched again, and raw content is stored gzipped", SLOW, async () => {
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
});
