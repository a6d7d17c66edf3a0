// Tiny generated data files for the data-layer tests: IDX images and labels (raw and gzip) with their ContentSpecs.
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import type { ContentSpec } from "../../src/data/index.js";
import { MNIST_FILES } from "../../src/data/index.js";
import { mulberry32 } from "../../src/util/random.js";
import { writeTemp } from "../support/temp.js";

/** A ubyte IDX file: magic 0x0000080N, big-endian dims, then the bytes. */
export function idxBytes(dims: readonly number[], data: Uint8Array, magic = 0x800 + dims.length): Uint8Array {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  for (const [i, d] of dims.entries()) header.writeUInt32BE(d, 4 + 4 * i);
  return Buffer.concat([header, data]);
}

/** `count` seeded 28x28 images (pixels 0-255) as a raw IDX file. */
export function imagesIdx(count: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  return idxBytes([count, 28, 28], Uint8Array.from({ length: count * 784 }, () => Math.floor(random() * 256)));
}

/** Labels 0..9 repeating, shifted by `offset`, as a raw IDX file of `count` records. */
export function labelsIdx(count: number, offset = 0): Uint8Array {
  return idxBytes([count], Uint8Array.from({ length: count }, (_, i) => (i + offset) % 10));
}

/** The size and sha256 of raw content, as downloadVerified and fileProblem take them. */
export function contentSpec(name: string, raw: Uint8Array): ContentSpec {
  return { name, bytes: raw.length, sha256: createHash("sha256").update(raw).digest("hex") };
}

/** One file of a tiny MNIST-shaped set: its raw IDX content, the gzip bytes, and its own spec. */
export interface TinyFile {
  readonly name: string;
  readonly raw: Uint8Array;
  readonly gz: Uint8Array;
  readonly spec: ContentSpec;
}

/** MNIST's four file names holding `train` and `test` records (not MNIST's checksums: each file has its own spec). */
export function tinyMnist(train = 10, test = 5): TinyFile[] {
  const contents: Record<(typeof MNIST_FILES)[number]["key"], Uint8Array> = {
    trainImages: imagesIdx(train, 1),
    trainLabels: labelsIdx(train),
    testImages: imagesIdx(test, 2),
    testLabels: labelsIdx(test, 3),
  };
  return MNIST_FILES.map(({ key, name }) => {
    const raw = contents[key];
    return { name, raw, gz: gzipSync(raw), spec: contentSpec(name, raw) };
  });
}

/** Writes the tiny set's gzip files into dir (created if needed); returns dir. */
export function writeTinyMnist(dir: string, files: readonly TinyFile[] = tinyMnist()): string {
  mkdirSync(dir, { recursive: true });
  for (const file of files) writeTemp(dir, file.name, file.gz);
  return dir;
}
