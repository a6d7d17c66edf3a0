// The snapshot decoder fuzzed (issue 10, "Decoders fuzzed"): 12,000 seeded cases — random bytes (some behind a valid
// magic and version), truncations, bit flips, oversized declared sizes (a header claiming 10^12 floats, metadata
// lengths up to 2^32 - 1) and type-confused metadata re-sealed with a valid CRC-32 — each refused with a
// SnapshotError or decoded to a snapshot that encodes back to the very same bytes; never another error, a hang, or an
// allocation beyond the bytes given.
import assert from "node:assert/strict";
import { test } from "node:test";
import { crc32 } from "../../src/model/file/crc32.js";
import { decodeSnapshot, encodeSnapshot, type ShardSnapshot, SNAPSHOT_HEADER_BYTES, SNAPSHOT_MAGIC, SnapshotError } from "../../src/cluster/snapshot.js";
import { mulberry32 } from "../../src/util/random.js";

const CASES = 12_000;
const TIMEOUT = { timeout: 120_000 };

type Random = () => number;
const int = (random: Random, n: number) => Math.floor(random() * n);

/** A valid snapshot of a random small shape. */
function randomSnapshot(random: Random): ShardSnapshot {
  const n = int(random, 24);
  const slots = int(random, 3);
  const begin = int(random, 50);
  const floats = () => Float32Array.from({ length: n }, () => (random() - 0.5) * 1e3);
  const workers = int(random, 4);
  return {
    job: `job-${int(random, 100)}`, shard: 0, shards: 1 + int(random, 4), keys: begin + n + int(random, 10), begin, end: begin + n,
    specHash: random() < 0.5 ? "" : "abc123", optimizer: ["sgd", "adagrad", "adam"][slots] ?? "sgd",
    version: int(random, 1e6), epoch: int(random, 50), logSeq: int(random, 1e6), createdAt: 1_700_000_000_000 + int(random, 1e9),
    clocks: Array.from({ length: workers }, (_, w) => [w, int(random, 1000)] as [number, number]),
    applied: Array.from({ length: workers }, (_, w) => {
      const max = 5 + int(random, 100);
      return { worker: w, max, recent: [max - 3, max - 1, max].filter((s) => s > 0) };
    }),
    params: floats(),
    state: Array.from({ length: slots }, floats),
  };
}

/** The bytes of a snapshot whose metadata JSON is `meta` (any value) and whose blocks are `blocks`, sealed with a valid CRC. */
function seal(meta: unknown, blocks: Uint8Array, metaLength?: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(meta));
  const start = (SNAPSHOT_HEADER_BYTES + json.length + 3) & ~3;
  const bytes = new Uint8Array(start + blocks.length + 4);
  const view = new DataView(bytes.buffer);
  bytes.set(SNAPSHOT_MAGIC);
  view.setUint32(8, 1, true);
  view.setUint32(12, metaLength ?? json.length, true);
  bytes.set(json, SNAPSHOT_HEADER_BYTES);
  bytes.set(blocks, start);
  view.setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)), true);
  return bytes;
}

/** The metadata object and the float blocks of valid bytes. */
function split(bytes: Uint8Array): { meta: Record<string, unknown>; blocks: Uint8Array } {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
  const meta = JSON.parse(new TextDecoder().decode(bytes.subarray(SNAPSHOT_HEADER_BYTES, SNAPSHOT_HEADER_BYTES + length))) as Record<string, unknown>;
  return { meta, blocks: bytes.slice((SNAPSHOT_HEADER_BYTES + length + 3) & ~3, bytes.length - 4) };
}

const CONFUSED: unknown[] = [
  "7", -1, 1.5, null, true, [], {}, 1e300, -0.5, Number.MAX_SAFE_INTEGER + 2, 2 ** 32, [[1]], [[0, 1, 2]], [[-1, 2]], [["a", 1]],
  [[0, 5, [6]]], [[0, 5, [3, 2]]], [[0, 5, "x"]], [[0, 1], [0, 2]], { length: 3 }, "", "a".repeat(300),
];

/** One mutated input, of one of the kinds in the header. */
function mutate(random: Random, kind: number): Uint8Array {
  const valid = encodeSnapshot(randomSnapshot(random));
  switch (kind) {
    case 0: {
      const bytes = Uint8Array.from({ length: int(random, 300) }, () => int(random, 256));
      if (random() < 0.5 && bytes.length >= 16) {
        bytes.set(SNAPSHOT_MAGIC);
        new DataView(bytes.buffer).setUint32(8, 1, true);
        if (random() < 0.5) new DataView(bytes.buffer).setUint32(12, int(random, bytes.length), true);
      }
      return bytes;
    }
    case 1:
      return valid.slice(0, int(random, valid.length));
    case 2: {
      const bytes = valid.slice();
      for (let f = 1 + int(random, 8); f > 0; f--) bytes[int(random, bytes.length)]! ^= 1 << int(random, 8);
      return bytes;
    }
    case 3: {
      const { meta, blocks } = split(valid);
      const huge = [1e12, 2 ** 40, 2 ** 31, 0xffffffff, 1e15][int(random, 5)]!;
      const field = ["floats", "end", "keys", "slots"][int(random, 4)]!;
      if (random() < 0.3) return seal(meta, blocks, [0xffffffff, 2 ** 31, 1e8][int(random, 3)]!);
      if (field === "floats" || field === "end") Object.assign(meta, { floats: huge, end: (meta.begin as number) + huge, keys: (meta.begin as number) + huge });
      else meta[field] = huge;
      return seal(meta, blocks);
    }
    default: {
      const { meta, blocks } = split(valid);
      const keys = Object.keys(meta);
      const how = random();
      if (how < 0.1) meta[`extra${int(random, 3)}`] = 1;
      else if (how < 0.2) delete meta[keys[int(random, keys.length)]!];
      else meta[keys[int(random, keys.length)]!] = CONFUSED[int(random, CONFUSED.length)];
      return seal(random() < 0.1 ? [meta] : meta, blocks);
    }
  }
}

test(`snapshot decoder: ${CASES} seeded random, truncated, flipped, oversized and type-confused inputs`, TIMEOUT, () => {
  const random = mulberry32(20_261_201);
  const counts = new Map<string, number>();
  let decoded = 0;
  for (let c = 0; c < CASES; c++) {
    const kind = c % 5;
    const input = mutate(random, kind);
    let result: ShardSnapshot | undefined;
    try {
      result = decodeSnapshot(input, { name: `case-${c}` });
    } catch (error) {
      if (!(error instanceof SnapshotError)) assert.fail(`case ${c} (kind ${kind}): ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
      assert.equal(error.snapshot, `case-${c}`);
      counts.set(error.reason, (counts.get(error.reason) ?? 0) + 1);
      continue;
    }
    decoded++;
    // Accepted only when it is a snapshot: the very same bytes again when encoded.
    assert.deepEqual(encodeSnapshot(result), input, `case ${c} (kind ${kind}) decoded to something else`);
  }
  for (const reason of ["magic", "truncated", "crc32", "limit", "meta"]) assert.ok((counts.get(reason) ?? 0) > 0, `some inputs refused as ${reason}: ${[...counts]}`);
  assert.ok(decoded < CASES / 5, `${decoded} decoded`);
});

test("a header claiming 10^12 floats is refused before allocating, however few bytes follow", () => {
  const meta = { ...split(encodeSnapshot(randomSnapshot(mulberry32(1)))).meta };
  Object.assign(meta, { begin: 0, end: 1e12, keys: 1e12, floats: 1e12, slots: 0 });
  for (const maxBytes of [undefined, 2 ** 50]) {
    try {
      decodeSnapshot(seal(meta, new Uint8Array(64)), { maxBytes });
      assert.fail("decoded");
    } catch (error) {
      assert.ok(error instanceof SnapshotError, String(error));
      assert.ok(error.reason === (maxBytes === undefined ? "limit" : "truncated"), error.message);
    }
  }
});
