// Datasets published once into the NATS JetStream object store, so peers on machines without a shared file system
// read them from NATS: putDataset streams a file in under a content-addressed name (`<sha256 first 16 hex>-<file
// name>`, extensions kept), fetchDataset streams it back into a local cache and checks it, and `nats:<name>` is how
// the CLI's --data names such a dataset.
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { type ObjectInfo, type ObjectStore, Objm } from "@nats-io/obj";
import { AtomicFile } from "../node/files.js";
import { ClusterError } from "./errors.js";

/** The defaults of the data store (the one place they are written). */
export const DATA_STORE_DEFAULTS = {
  /** The object store bucket (JetStream stream OBJ_downpour-data) that holds every dataset. */
  bucket: "downpour-data",
  /** Replicas of the bucket when putDataset creates it (an existing bucket is used as it is). */
  replicas: 1,
  /** Hex digits of the sha256 that start each name. */
  digestChars: 16,
  /** The folder under the cache dir where fetchDataset keeps fetched datasets. */
  cacheSubdir: "nats-data",
  /** Bytes read from the file per chunk while putting (the object store cuts its own chunks, at most max_payload). */
  readChunkBytes: 128 * 1024,
  /** How long fetchDataset waits for the next chunk before it calls the object truncated, in ms. */
  stallTimeoutMs: 30_000,
  /** The prefix of a data reference: `nats:<name>`. */
  refPrefix: "nats:",
} as const;

/** What putDataset does; every field is optional (defaults in DATA_STORE_DEFAULTS). */
export interface PutDatasetOptions {
  /** The bucket (default DATA_STORE_DEFAULTS.bucket); created when missing. */
  bucket?: string;
  /** Replicas of a bucket created here (default 1). */
  replicas?: number;
  /** Send the file even when the bucket already holds it whole (default false). */
  force?: boolean;
}

/** What fetchDataset does. */
export interface FetchDatasetOptions {
  /** The cache root; the dataset is kept as <cacheDir>/nats-data/<name>. */
  cacheDir: string;
  /** The bucket (default DATA_STORE_DEFAULTS.bucket). */
  bucket?: string;
  /** How long to wait for the next chunk before failing as truncated, in ms (default 30 000). */
  stallTimeoutMs?: number;
}

/** A dataset in the store. */
export interface StoredDataset {
  /** The object's name, `<sha16>-<file name>`: pass `nats:<name>` as --data. */
  name: string;
  bucket: string;
  /** Bytes. */
  size: number;
  /** The sha256 of the bytes, as 64 hex digits. */
  sha256: string;
  /** putDataset: false when the same content was already stored (nothing was sent). listDatasets: always false. */
  uploaded: boolean;
}

/** Why a data-store operation failed. */
export type StoredDataFailure = "file" | "name" | "missing" | "no-jetstream" | "corrupt" | "transport";

/** A dataset that cannot be put or fetched: the file unreadable, the name malformed, the object missing or corrupt,
 * JetStream off on the server, or the transport failing. The message names the file or the bucket and object. */
export class StoredDataError extends ClusterError {
  readonly reason: StoredDataFailure;
  readonly bucket: string | undefined;
  /** The object's name, when one is involved. */
  readonly object: string | undefined;
  /** The local file, when one is involved. */
  readonly file: string | undefined;

  constructor(message: string, fields: { reason: StoredDataFailure; bucket?: string; object?: string; file?: string }, options?: { cause?: unknown }) {
    super(message, undefined, options);
    this.reason = fields.reason;
    this.bucket = fields.bucket;
    this.object = fields.object;
    this.file = fields.file;
  }
}

const NAME_PATTERN = new RegExp(`^[0-9a-f]{${DATA_STORE_DEFAULTS.digestChars}}-[A-Za-z0-9._-]+$`);
const PUT_HINT = "publish it with: downpour data put FILE --nats URL";

/**
 * The stored name the `--data` text refers to, for the spelling `nats:<name>` (e.g. `nats:1f3a0c9b2d4e5f60-pima.csv`,
 * as `downpour data put` prints it); undefined for any other text (a preset or a file path). Text that starts with
 * `nats:` but holds no valid name throws a StoredDataError (reason "name") saying what a name looks like.
 */
export function parseStoredDataRef(text: string): string | undefined {
  if (!text.startsWith(DATA_STORE_DEFAULTS.refPrefix)) return undefined;
  const name = text.slice(DATA_STORE_DEFAULTS.refPrefix.length);
  checkName(name, text);
  return name;
}

/** `nats:<name>`, the reference to pass as --data. */
export function storedDataRef(name: string): string {
  return `${DATA_STORE_DEFAULTS.refPrefix}${name}`;
}

/**
 * Puts the file into the bucket (created when missing) under `<sha16>-<file name>` and resolves with what is stored.
 * The file is read twice, streamed, never held whole: once to hash it, once to send it in chunks. When the bucket
 * already holds this name with the same digest and all its chunks nothing is sent (uploaded false): putting the same
 * content again is a no-op returning the same name (`force` sends it anyway, replacing the stored object). Resolves
 * once the server acknowledged the object's last chunk and metadata (the object is then readable by every peer); the
 * file may change afterwards. Rejects with StoredDataError: "file" (the file is unreadable, or changed while being
 * sent; nothing stays stored then), "no-jetstream", "transport".
 */
export async function putDataset(connection: NatsConnection, file: string, options: PutDatasetOptions = {}): Promise<StoredDataset> {
  const bucket = options.bucket ?? DATA_STORE_DEFAULTS.bucket;
  const { sha256, size } = await hashFile(file);
  const name = `${sha256.slice(0, DATA_STORE_DEFAULTS.digestChars)}-${safeBaseName(file)}`;
  const where = { bucket, object: name };
  const store = await storeCall(where, () => new Objm(connection).create(bucket, { replicas: options.replicas ?? DATA_STORE_DEFAULTS.replicas }));
  const existing = await storeCall(where, () => store.info(name));
  if (!options.force && existing && !existing.deleted && existing.size === size && digestHex(existing) === sha256) {
    if (await storeCall(where, () => chunksPresent(connection, bucket, existing))) return { name, bucket, size, sha256, uploaded: false };
  }
  const source = fileStream(file);
  let info: Awaited<ReturnType<ObjectStore["put"]>>;
  try {
    info = await storeCall(where, () => store.put({ name, description: `downpour dataset ${basename(file)}` }, source.stream));
  } finally {
    await source.close(); // also when the put failed midway (the store stops reading: the file must not stay open)
  }
  if (info.size !== size || digestHex(info) !== sha256) {
    await store.delete(name).catch(() => {});
    throw new StoredDataError(`data put: ${file} changed while it was being sent (sha256 ${sha256} before, ${digestHex(info)} sent); put it again`, {
      reason: "file",
      file,
      bucket,
      object: name,
    });
  }
  return { name, bucket, size, sha256, uploaded: true };
}

/**
 * Resolves with a local file holding the stored object `name`: <cacheDir>/nats-data/<name>. The server is asked for
 * the object's info first; a file already there whose size and sha256 match the object's is used as it is (nothing
 * downloaded). Otherwise the object streams into a temp file beside the target, is checked (its size, the object
 * store's digest and the sha256 prefix of the name) and renamed over the target, so the path resolved holds the
 * whole object or the call rejects and leaves no partial file (peers sharing a cacheDir may fetch at once). The
 * caller owns the file afterwards; nothing keeps it in sync with the store. Rejects with StoredDataError: "name"
 * (not a stored name), "missing" (no such bucket or object; the message says how to put it), "no-jetstream",
 * "corrupt" (wrong size or digest, or no chunk within stallTimeoutMs), "transport".
 */
export async function fetchDataset(connection: NatsConnection, name: string, options: FetchDatasetOptions): Promise<string> {
  checkName(name, name);
  const bucket = options.bucket ?? DATA_STORE_DEFAULTS.bucket;
  const where = { bucket, object: name };
  const store = await openStore(connection, where);
  const info = await storeCall(where, () => store.info(name));
  if (!info || info.deleted) throw missingError(where, `dataset "${name}" not found in bucket "${bucket}"`);
  const expected = digestHex(info);
  if (!expected.startsWith(name.slice(0, DATA_STORE_DEFAULTS.digestChars))) {
    throw corruptError(where, `its digest (sha256 ${expected}) does not match the name's prefix`);
  }
  const dir = join(options.cacheDir, DATA_STORE_DEFAULTS.cacheSubdir);
  const path = join(dir, name);
  if (await fileMatches(path, info.size, expected)) return path;
  await mkdir(dir, { recursive: true });
  await download(store, info, path, options.stallTimeoutMs ?? DATA_STORE_DEFAULTS.stallTimeoutMs);
  return path;
}

/** The datasets in the bucket (empty when the bucket does not exist), sorted by name. Rejects with StoredDataError
 * ("no-jetstream", "transport"). */
export async function listDatasets(connection: NatsConnection, options: { bucket?: string } = {}): Promise<StoredDataset[]> {
  const bucket = options.bucket ?? DATA_STORE_DEFAULTS.bucket;
  const where = { bucket };
  let store: ObjectStore;
  try {
    store = await openStore(connection, where);
  } catch (error) {
    if (error instanceof StoredDataError && error.reason === "missing") return [];
    throw error;
  }
  const infos = await storeCall(where, () => store.list());
  return infos
    .filter((info) => !info.deleted)
    .map((info) => ({ name: info.name, bucket, size: info.size, sha256: digestHex(info), uploaded: false }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function checkName(name: string, given: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new StoredDataError(
      `${JSON.stringify(given)} is not a stored dataset: expected nats:<name> with the name downpour data put printed, ` +
        `${DATA_STORE_DEFAULTS.digestChars} hex digits, "-" and the file name (letters, digits, ".", "_", "-"), like nats:1f3a0c9b2d4e5f60-pima.csv`,
      { reason: "name", object: name },
    );
  }
}

/** True when the stream holds every chunk the object's metadata counts (none were purged or lost). */
async function chunksPresent(connection: NatsConnection, bucket: string, info: ObjectInfo): Promise<boolean> {
  if (info.chunks === 0) return true;
  const subject = `$O.${bucket}.C.${info.nuid}`;
  const jsm = await jetstreamManager(connection);
  const stream = await jsm.streams.info(`OBJ_${bucket}`, { subjects_filter: subject });
  return stream.state.subjects?.[subject] === info.chunks;
}

/** The file's name with anything but letters, digits, ".", "_" and "-" made "_" (extensions kept). */
function safeBaseName(file: string): string {
  return basename(file).replace(/[^A-Za-z0-9._-]/g, "_");
}

/** The object store's digest ("SHA-256=<base64url>") as hex ("" when absent or of another kind). */
function digestHex(info: Pick<ObjectInfo, "digest">): string {
  const digest = info.digest ?? "";
  return digest.startsWith("SHA-256=") ? Buffer.from(digest.slice(8), "base64url").toString("hex") : "";
}

async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  try {
    const hash = createHash("sha256");
    let size = 0;
    for await (const piece of createReadStream(file, { highWaterMark: DATA_STORE_DEFAULTS.readChunkBytes })) {
      hash.update(piece as Buffer);
      size += (piece as Buffer).length;
    }
    return { sha256: hash.digest("hex"), size };
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory, not a data file" : (error as Error).message;
    throw new StoredDataError(`data put: cannot read ${file}: ${why}`, { reason: "file", file }, { cause: error });
  }
}

/** The file as a ReadableStream of chunks, read on demand (the store's back pressure paces the reads), and a close()
 *  that closes the file whatever became of the stream (idempotent). */
function fileStream(file: string): { stream: ReadableStream<Uint8Array>; close: () => Promise<void> } {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  const close = async () => {
    const open = handle;
    handle = undefined;
    await open?.close();
  };
  const stream = new ReadableStream<Uint8Array>({
    async start() {
      handle = await open(file, "r");
    },
    async pull(controller) {
      const buffer = new Uint8Array(DATA_STORE_DEFAULTS.readChunkBytes);
      const { bytesRead } = await handle!.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) {
        await close();
        controller.close();
      } else {
        controller.enqueue(buffer.subarray(0, bytesRead));
      }
    },
    cancel: close,
  });
  return { stream, close };
}

async function openStore(connection: NatsConnection, where: { bucket: string; object?: string }): Promise<ObjectStore> {
  try {
    return await new Objm(connection).open(where.bucket);
  } catch (error) {
    if ((error as Error)?.message === "object store not found") {
      const what = where.object === undefined ? "" : `dataset "${where.object}" not found: `;
      throw missingError(where, `${what}the server has no bucket "${where.bucket}" (nothing was put yet)`, error);
    }
    throw storeError(error, where);
  }
}

/** Runs one store operation; its failure becomes a StoredDataError naming the bucket and object. */
async function storeCall<T>(where: { bucket: string; object?: string }, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw storeError(error, where);
  }
}

function storeError(error: unknown, where: { bucket: string; object?: string }): StoredDataError {
  if (error instanceof StoredDataError) return error;
  const what = where.object === undefined ? `bucket "${where.bucket}"` : `"${where.object}" in bucket "${where.bucket}"`;
  if (isJetStreamOff(error)) {
    return new StoredDataError(
      `data store: ${what}: the NATS server does not have JetStream enabled; datasets need it: start nats-server with -js, ` +
        "or add jetstream {} to its config",
      { reason: "no-jetstream", ...where },
      { cause: error },
    );
  }
  return new StoredDataError(`data store: ${what}: ${(error as Error)?.message ?? String(error)}`, { reason: "transport", ...where }, { cause: error });
}

function isJetStreamOff(error: unknown): boolean {
  const { name, code, message } = (error ?? {}) as { name?: string; code?: number; message?: string };
  return name === "JetStreamNotEnabled" || code === 10039 || code === 10076 || /jetstream (is )?not enabled/i.test(message ?? "");
}

function missingError(where: { bucket: string; object?: string }, detail: string, cause?: unknown): StoredDataError {
  return new StoredDataError(`${detail}; ${PUT_HINT}`, { reason: "missing", ...where }, { cause });
}

function corruptError(where: { bucket: string; object: string }, detail: string, cause?: unknown): StoredDataError {
  const oneLine = detail.replace(/\s*\n\s*/g, ", ");
  return new StoredDataError(`dataset "${where.object}" in bucket "${where.bucket}" is corrupt: ${oneLine}; put it again: downpour data put FILE --force --nats URL`, { reason: "corrupt", ...where }, { cause });
}

/** True when `path` is a file of `size` bytes whose sha256 is `sha256`. */
async function fileMatches(path: string, size: number, sha256: string): Promise<boolean> {
  try {
    const found = await stat(path);
    if (!found.isFile() || found.size !== size) return false;
    const hash = createHash("sha256");
    for await (const piece of createReadStream(path)) hash.update(piece as Buffer);
    return hash.digest("hex") === sha256;
  } catch {
    return false;
  }
}

/** Streams the object into a temp file beside `path`, checks size and digest, renames it over `path`. */
async function download(store: ObjectStore, info: ObjectInfo, path: string, stallTimeoutMs: number): Promise<void> {
  const where = { bucket: info.bucket, object: info.name };
  const result = await storeCall(where, () => store.get(info.name));
  if (!result) throw missingError(where, `dataset "${info.name}" not found in bucket "${info.bucket}" (it was deleted just now)`);
  // Awaited below when the data ended; until then a rejection must not go unhandled.
  result.error.catch(() => {});
  const file = await AtomicFile.create(path);
  try {
    const hash = createHash("sha256");
    let size = 0;
    const reader = result.data.getReader();
    for (;;) {
      const { done, value } = await readWithin(reader, stallTimeoutMs, () => corruptError(where, `truncated: no data for ${stallTimeoutMs} ms after ${size} of ${info.size} bytes`));
      if (done) break;
      hash.update(value);
      size += value.length;
      await file.write(value);
    }
    const failed = await result.error;
    if (failed) throw corruptError(where, failed.message, failed);
    const sha256 = hash.digest("hex");
    if (size !== info.size) throw corruptError(where, `truncated: ${size} bytes received, ${info.size} expected`);
    if (sha256 !== digestHex(info)) throw corruptError(where, `sha256 of the bytes received is ${sha256}, expected ${digestHex(info)}`);
  } catch (error) {
    await file.abort();
    if (error instanceof StoredDataError) throw error;
    throw corruptError(where, (error as Error)?.message ?? String(error), error);
  }
  await file.commit();
}

/** The next chunk, or the error of `onStall` (after cancelling the stream) when none came within `ms`. */
async function readWithin(reader: ReadableStreamDefaultReader<Uint8Array>, ms: number, onStall: () => Error): Promise<ReadableStreamReadResult<Uint8Array>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onStall()), ms);
  });
  try {
    return await Promise.race([reader.read(), stalled]);
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
