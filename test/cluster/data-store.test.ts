// The data store against real nats-server processes with JetStream: a file put under its content-addressed name
// and fetched back byte for byte into a cache dir (again: the same name, nothing sent, nothing downloaded), a
// 2.5 MB file across a 256 KB max_payload server, a missing name or bucket, a server without JetStream, an object
// whose chunks are gone (truncated; putting it again repairs it) or belong to other bytes (corrupt; a forced put
// repairs it), and the nats:<name> references.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  DATA_STORE_DEFAULTS, fetchDataset, listDatasets, parseStoredDataRef, putDataset, StoredDataError, storedDataRef,
} from "../../src/cluster/data-store.js";
import { ClusterError } from "../../src/cluster/errors.js";
import { mulberry32 } from "../../src/util/random.js";
import { type NatsServer, startNatsServer } from "../support/nats.js";
import { sharedData } from "../support/paths.js";
import { tempDir, writeTemp } from "../support/temp.js";

const TIMEOUT = { timeout: 60_000 };
const BUCKET = DATA_STORE_DEFAULTS.bucket;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** `n` seeded pseudo-random bytes. */
function randomBytes(n: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

/** What `run` rejects with, asserted to be a StoredDataError of `reason`. */
async function storedDataFailure(run: () => Promise<unknown>, reason: StoredDataError["reason"]): Promise<StoredDataError> {
  const error = await run().then(
    () => assert.fail(`expected a StoredDataError (${reason})`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof StoredDataError, `a StoredDataError, got ${String(error)}`);
  assert.ok(error instanceof ClusterError);
  assert.equal(error.reason, reason, error.message);
  return error;
}

/** The files in <cacheDir>/nats-data (none when it does not exist). */
function cached(cacheDir: string): string[] {
  try {
    return readdirSync(join(cacheDir, DATA_STORE_DEFAULTS.cacheSubdir)).sort();
  } catch {
    return [];
  }
}

describe("the data store on a JetStream server", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const dir = tempDir("data-store");
  before(async () => {
    server = await startNatsServer({ maxPayload: 256 * 1024 });
    nc = await connect({ servers: server.url, timeout: 5_000 });
  });
  after(async () => {
    await nc?.close();
    await server?.stop();
  });

  test("a CSV put under <sha16>-<name> comes back byte for byte; again it is a no-op", TIMEOUT, async () => {
    const file = sharedData("pima-diabetes.csv");
    const bytes = readFileSync(file);
    const stored = await putDataset(nc, file);
    assert.equal(stored.name, `${sha256(bytes).slice(0, 16)}-pima-diabetes.csv`);
    assert.deepEqual({ bucket: stored.bucket, size: stored.size, sha256: stored.sha256, uploaded: stored.uploaded }, {
      bucket: BUCKET, size: bytes.length, sha256: sha256(bytes), uploaded: true,
    });
    assert.equal(parseStoredDataRef(storedDataRef(stored.name)), stored.name);

    const cacheDir = join(dir, "cache");
    const path = await fetchDataset(nc, stored.name, { cacheDir });
    assert.equal(path, join(cacheDir, "nats-data", stored.name));
    assert.ok(readFileSync(path).equals(bytes), "the fetched file holds the same bytes");

    const again = await putDataset(nc, file);
    assert.equal(again.name, stored.name);
    assert.equal(again.uploaded, false, "the same content is not sent twice");
    const before = statSync(path);
    assert.equal(await fetchDataset(nc, stored.name, { cacheDir }), path);
    const now = statSync(path);
    assert.deepEqual([now.ino, now.mtimeMs], [before.ino, before.mtimeMs], "a matching cached file is used as it is");

    writeFileSync(path, "spoiled");
    assert.equal(await fetchDataset(nc, stored.name, { cacheDir }), path);
    assert.ok(readFileSync(path).equals(bytes), "a cached file that does not match is fetched again");
    assert.deepEqual(cached(cacheDir), [stored.name], "no temp file is left");

    const listed = await listDatasets(nc);
    assert.ok(listed.some((d) => d.name === stored.name && d.size === bytes.length && d.sha256 === stored.sha256), JSON.stringify(listed));
  });

  test("2.5 MB crosses a 256 KB max_payload server intact, extensions kept; two fetches at once agree", TIMEOUT, async () => {
    const bytes = randomBytes(2_500_000, 8);
    const file = writeTemp(dir, "blob.csv.gz", bytes);
    const stored = await putDataset(nc, file);
    assert.match(stored.name, /^[0-9a-f]{16}-blob\.csv\.gz$/);
    assert.equal(stored.size, bytes.length);
    const cacheDir = join(dir, "big-cache");
    const [a, b] = await Promise.all([fetchDataset(nc, stored.name, { cacheDir }), fetchDataset(nc, stored.name, { cacheDir })]);
    assert.equal(a, b);
    assert.equal(sha256(readFileSync(a)), sha256(bytes));
    assert.deepEqual(cached(cacheDir), [stored.name], "no temp file is left");
  });

  test("a file name with spaces is stored with them made _, and an empty file is a dataset too", TIMEOUT, async () => {
    const stored = await putDataset(nc, writeTemp(dir, "my data (1).csv", "1,2,0\n"));
    assert.match(stored.name, /^[0-9a-f]{16}-my_data__1_\.csv$/);
    const empty = await putDataset(nc, writeTemp(dir, "empty.csv", ""));
    const path = await fetchDataset(nc, empty.name, { cacheDir: join(dir, "empty-cache") });
    assert.equal(readFileSync(path).length, 0);
  });

  test("a missing object or bucket names it and says how to put it", TIMEOUT, async () => {
    const name = "0123456789abcdef-nothing.csv";
    const missing = await storedDataFailure(() => fetchDataset(nc, name, { cacheDir: join(dir, "c") }), "missing");
    assert.match(missing.message, new RegExp(`${name}.*bucket "${BUCKET}".*downpour data put FILE --nats URL`));
    assert.deepEqual([missing.bucket, missing.object], [BUCKET, name]);
    const noBucket = await storedDataFailure(() => fetchDataset(nc, name, { cacheDir: join(dir, "c"), bucket: "no-such-bucket" }), "missing");
    assert.match(noBucket.message, /no bucket "no-such-bucket".*downpour data put/);
    assert.deepEqual(await listDatasets(nc, { bucket: "no-such-bucket" }), []);
    assert.deepEqual(cached(join(dir, "c")), []);
  });

  test("a missing file to put is named", TIMEOUT, async () => {
    const file = join(dir, "missing.csv");
    const error = await storedDataFailure(() => putDataset(nc, file), "file");
    assert.match(error.message, /missing\.csv: no such file/);
    assert.equal(error.file, file);
  });

  test("an object whose chunks are gone fails as truncated, naming it, and leaves no file", TIMEOUT, async () => {
    const stored = await putDataset(nc, writeTemp(dir, "gone.csv", randomBytes(300_000, 3)));
    const info = await (await new Objm(nc).open(BUCKET)).info(stored.name);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.purge(`OBJ_${BUCKET}`, { filter: `$O.${BUCKET}.C.${info!.nuid}` });
    const cacheDir = join(dir, "gone-cache");
    const error = await storedDataFailure(() => fetchDataset(nc, stored.name, { cacheDir, stallTimeoutMs: 1_000 }), "corrupt");
    assert.match(error.message, new RegExp(`dataset "${stored.name}".*truncated`));
    assert.deepEqual(cached(cacheDir), []);
    const again = await putDataset(nc, join(dir, "gone.csv"));
    assert.equal(again.uploaded, true, "an object missing chunks is sent again");
    assert.equal(sha256(readFileSync(await fetchDataset(nc, stored.name, { cacheDir }))), stored.sha256);
  });

  test("an object whose chunks hold other bytes fails as corrupt, naming it, and leaves no file", TIMEOUT, async () => {
    const real = await putDataset(nc, writeTemp(dir, "real.csv", randomBytes(200_000, 5)));
    const other = await putDataset(nc, writeTemp(dir, "other.csv", randomBytes(200_000, 6)));
    const store = await new Objm(nc).open(BUCKET);
    const [realInfo, otherInfo] = [await store.info(real.name), await store.info(other.name)];
    // The metadata of `real` now points at the chunks of `other` (same size, other digest).
    const meta = {
      name: real.name, bucket: BUCKET, nuid: otherInfo!.nuid, size: realInfo!.size, chunks: otherInfo!.chunks,
      digest: realInfo!.digest, mtime: new Date().toISOString(), deleted: false, options: realInfo!.options,
    };
    const encoded = Buffer.from(real.name).toString("base64url");
    const subject = `$O.${BUCKET}.M.${encoded}${"=".repeat((4 - (encoded.length % 4)) % 4)}`;
    await jetstream(nc).publish(subject, JSON.stringify(meta));
    const cacheDir = join(dir, "corrupt-cache");
    const error = await storedDataFailure(() => fetchDataset(nc, real.name, { cacheDir, stallTimeoutMs: 5_000 }), "corrupt");
    assert.match(error.message, new RegExp(`dataset "${real.name}" in bucket "${BUCKET}" is corrupt`));
    assert.deepEqual(cached(cacheDir), []);
    assert.equal((await putDataset(nc, join(dir, "real.csv"), { force: true })).uploaded, true);
    assert.equal(sha256(readFileSync(await fetchDataset(nc, real.name, { cacheDir }))), real.sha256, "force sends it again");
  });
});

describe("the data store on a server without JetStream", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  before(async () => {
    server = await startNatsServer({ jetstream: false });
    nc = await connect({ servers: server.url, timeout: 5_000 });
  });
  after(async () => {
    await nc?.close();
    await server?.stop();
  });

  test("put, fetch and list say the server needs JetStream", TIMEOUT, async () => {
    const file = writeTemp(tempDir("data-store-nojs"), "a.csv", "1,0\n");
    for (const run of [
      () => putDataset(nc, file),
      () => fetchDataset(nc, "0123456789abcdef-a.csv", { cacheDir: tempDir("data-store-nojs-cache") }),
      () => listDatasets(nc),
    ]) {
      const error = await storedDataFailure(run, "no-jetstream");
      assert.match(error.message, /does not have JetStream enabled.*-js.*jetstream \{\}/);
    }
  });
});

describe("nats:<name> references", () => {
  test("nats:<name> gives the name; other text is not a reference; a malformed name is refused", () => {
    assert.equal(parseStoredDataRef("nats:0123456789abcdef-pima.csv"), "0123456789abcdef-pima.csv");
    assert.equal(parseStoredDataRef("pima.csv"), undefined);
    assert.equal(parseStoredDataRef("mnist"), undefined);
    for (const text of ["nats:", "nats:pima.csv", "nats:0123456789abcdef-../x", "nats:0123456789ABCDEF-a.csv", "nats:0123456789abcdef-a/b.csv"]) {
      assert.throws(() => parseStoredDataRef(text), (e: unknown) => e instanceof StoredDataError && e.reason === "name", text);
    }
    assert.throws(() => parseStoredDataRef("nats:x"), /"nats:x" is not a stored dataset: expected nats:<name>/);
  });

  test("fetchDataset refuses a name that could leave the cache dir", async () => {
    const error = await storedDataFailure(() => fetchDataset({} as NatsConnection, "../../etc/passwd", { cacheDir: "/tmp" }), "name");
    assert.match(error.message, /"\.\.\/\.\.\/etc\/passwd" is not a stored dataset/);
  });
});
