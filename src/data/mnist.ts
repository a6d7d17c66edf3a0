// MNIST: the four IDX files with their published checksums; find, verify, download and load them as Datasets.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { defaultCacheDir, type DataEnv } from "./cache.js";
import { fileProblem, type ContentSpec } from "./checksum.js";
import { createDataset, oneHot, type Dataset } from "./dataset.js";
import { downloadVerified, type DownloadProgress } from "./download.js";
import { ChecksumError, DataError } from "./errors.js";
import { readIdx, readIdxRecords } from "./idx.js";
import { checkDenseSize, DEFAULT_MEMORY_LIMIT_BYTES } from "./limits.js";

/** One MNIST file: its name and the size and sha256 of its uncompressed content. */
export interface MnistFile extends ContentSpec {
  readonly key: "trainImages" | "trainLabels" | "testImages" | "testLabels";
}

export const MNIST_FILES: readonly MnistFile[] = [
  { key: "trainImages", name: "train-images-idx3-ubyte.gz", bytes: 47040016, sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db" },
  { key: "trainLabels", name: "train-labels-idx1-ubyte.gz", bytes: 60008, sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5" },
  { key: "testImages", name: "t10k-images-idx3-ubyte.gz", bytes: 7840016, sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7" },
  { key: "testLabels", name: "t10k-labels-idx1-ubyte.gz", bytes: 10008, sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2" },
];

/** The official location first, then two well-known mirrors. */
export const MNIST_BASE_URLS: readonly string[] = [
  "http://yann.lecun.com/exdb/mnist/",
  "https://storage.googleapis.com/cvdf-datasets/mnist/",
  "https://ossci-datasets.s3.amazonaws.com/mnist/",
];

/** The base URLs to download from: $DOWNPOUR_MNIST_URLS (separated by spaces or commas) when set, else MNIST_BASE_URLS. */
export function mnistBaseUrls(env: DataEnv = process.env): readonly string[] {
  const urls = (env.DOWNPOUR_MNIST_URLS ?? "").split(/[\s,]+/).filter((url) => url !== "");
  return urls.length > 0 ? urls : MNIST_BASE_URLS;
}

const IMAGE_SIDE = 28;
const CLASSES = 10;

/** Where and how to download MNIST. */
export interface MnistDownloadOptions {
  /** Cache root; the files go in <cacheDir>/mnist. Default: defaultCacheDir(). */
  readonly cacheDir?: string;
  readonly baseUrls?: readonly string[];
  readonly fetch?: typeof fetch;
  readonly onProgress?: (progress: DownloadProgress) => void;
  /** Abort a request when no byte arrives for this long; default 30000 ms. */
  readonly idleTimeoutMs?: number;
}

/** The MNIST directory, the files fetched (with the URL that delivered each), and those already present and verified. */
export interface MnistDownloadResult {
  readonly dir: string;
  readonly downloaded: readonly { file: string; url: string }[];
  readonly present: readonly string[];
}

/** Downloads every MNIST file that is missing or corrupt in <cacheDir>/mnist. */
export async function downloadMnist(options: MnistDownloadOptions = {}): Promise<MnistDownloadResult> {
  const dir = join(options.cacheDir ?? defaultCacheDir(), "mnist");
  await mkdir(dir, { recursive: true });
  const source = { ...options, baseUrls: options.baseUrls ?? MNIST_BASE_URLS };
  const downloaded: { file: string; url: string }[] = [];
  const present: string[] = [];
  for (const spec of MNIST_FILES) {
    if ((await fileProblem(join(dir, spec.name), spec)) === undefined) {
      present.push(spec.name);
      continue;
    }
    downloaded.push({ file: spec.name, url: await downloadVerified(spec, dir, source) });
  }
  return { dir, downloaded, present };
}

/** Throws a ChecksumError listing every MNIST file of dir that is missing or whose uncompressed content is wrong. */
export async function verifyMnist(dir: string): Promise<void> {
  const problems = await Promise.all(MNIST_FILES.map((spec) => fileProblem(join(dir, spec.name), spec)));
  const lines = MNIST_FILES.flatMap((spec, i) => (problems[i] ? [`\n  ${spec.name}: ${problems[i]}`] : []));
  if (lines.length > 0) throw new ChecksumError(`${dir}: the MNIST files do not verify:${lines.join("")}`, { file: dir });
}

/** The first of <cache>/mnist and $DOWNPOUR_DATA/mnist that holds all four files (not verified), else undefined. */
export function findMnist(env: DataEnv = process.env): string | undefined {
  const candidates = [join(defaultCacheDir(env), "mnist")];
  if (env.DOWNPOUR_DATA) candidates.push(join(env.DOWNPOUR_DATA, "mnist"));
  return candidates.find((dir) => MNIST_FILES.every((spec) => existsSync(join(dir, spec.name))));
}

/** Train (60000) and test (10000) sets: x = pixel / 255 (784 per row), y one-hot over 10, labels. */
export async function loadMnist(dir: string): Promise<{ train: Dataset; test: Dataset }> {
  const path = (key: MnistFile["key"]) => join(dir, MNIST_FILES.find((f) => f.key === key)!.name);
  const [train, test] = await Promise.all([
    loadSplit(path("trainImages"), path("trainLabels"), "mnist-train"),
    loadSplit(path("testImages"), path("testLabels"), "mnist-test"),
  ]);
  return { train, test };
}

async function loadSplit(imagesPath: string, labelsPath: string, name: string): Promise<Dataset> {
  const [x, labels] = await Promise.all([readImages(imagesPath), readLabels(labelsPath)]);
  const features = IMAGE_SIDE * IMAGE_SIDE;
  if (x.length / features !== labels.length) {
    throw new DataError(`${imagesPath} holds ${x.length / features} images but ${labelsPath} holds ${labels.length} labels`, { file: imagesPath });
  }
  return createDataset({ features, outputs: CLASSES, x, y: oneHot(labels, CLASSES), labels, name });
}

/** Pixels scaled to [0, 1], converted chunk by chunk while the file streams. */
async function readImages(path: string): Promise<Float32Array> {
  const scale = Float32Array.from({ length: 256 }, (_, v) => v / 255);
  let x: Float32Array | undefined;
  for await (const { index, data, dims } of readIdxRecords(path, { recordsPerChunk: 1000 })) {
    if (!x) x = new Float32Array(checkedImageCount(path, dims) * IMAGE_SIDE * IMAGE_SIDE);
    const offset = index * IMAGE_SIDE * IMAGE_SIDE;
    for (let i = 0; i < data.length; i++) x[offset + i] = scale[data[i]!]!;
  }
  return x ?? new Float32Array(0);
}

/** The image count of the header's dims, after checking the images (and their one-hot labels) fit the default memory limit. */
function checkedImageCount(path: string, dims: readonly number[]): number {
  const rows = checkDims(path, dims, [IMAGE_SIDE, IMAGE_SIDE]);
  const cause = `the header's dimensions ${dims.join("x")} imply ${rows} images`;
  checkDenseSize({ rows, features: IMAGE_SIDE * IMAGE_SIDE, outputs: CLASSES, cause }, DEFAULT_MEMORY_LIMIT_BYTES, { file: path });
  return rows;
}

async function readLabels(path: string): Promise<Int32Array> {
  const { dims, data } = await readIdx(path);
  checkDims(path, dims, []);
  const bad = data.findIndex((label) => label >= CLASSES);
  if (bad >= 0) throw new DataError(`${path}: label ${data[bad]} of record ${bad} is not a digit 0-9`, { file: path });
  return Int32Array.from(data);
}

/** The record count, after checking that dims are [count, ...recordDims]. */
function checkDims(path: string, dims: readonly number[], recordDims: readonly number[]): number {
  const ok = dims.length === recordDims.length + 1 && recordDims.every((d, i) => dims[i + 1] === d);
  if (!ok) throw new DataError(`${path}: dims ${dims.join("x")}, expected N${recordDims.map((d) => `x${d}`).join("")}`, { file: path });
  return dims[0]!;
}
