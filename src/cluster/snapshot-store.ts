// Where shard snapshots (snapshot.ts) go: a JetStream object store bucket of the job (the default; bucket
// downpour-snap-<job>) or a directory (each snapshot written to a temp file and renamed into place, so a file is whole
// or absent). Snapshots are named <job>.shard-<k>.<generation>.dpsnap, the generation counting up per shard; the
// last `keep` of each shard are kept. latest() returns the newest one that decodes, skipping (and reporting by name)
// a corrupt or truncated newer one.
import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { type ObjectStore, Objm } from "@nats-io/obj";
import { InvalidArgumentError } from "../errors.js";
import { writeFileAtomic } from "../node/files.js";
import { decodeSnapshot, encodeSnapshot, type ShardSnapshot, SNAPSHOT_LIMITS, SnapshotError } from "./snapshot.js";
import { checkJobId } from "./subjects.js";

/** The defaults of the snapshot stores (the one place they are written). */
export const SNAPSHOT_STORE_DEFAULTS = Object.freeze({
  /** Snapshots kept per shard (older ones are removed after each save). */
  keep: 3,
  /** Replicas of the bucket when it is created (an existing bucket is used as it is). */
  replicas: 1,
  /** The bucket prefix: the bucket of job J is downpour-snap-J. */
  bucketPrefix: "downpour-snap-",
  /** The file name extension. */
  extension: ".dpsnap",
  /** The largest snapshot read (bigger ones are refused before reading), in bytes. */
  maxBytes: SNAPSHOT_LIMITS.maxBytes,
});

/** One stored snapshot. */
export interface SnapshotEntry {
  /** Its name in the store (the object's name, or the file's path). */
  name: string;
  shard: number;
  generation: number;
  /** Bytes. */
  size: number;
}

/** What latest() found. */
export interface LatestSnapshot {
  snapshot: ShardSnapshot;
  entry: SnapshotEntry;
  /** Newer snapshots that did not decode (each a SnapshotError naming it), newest first. */
  skipped: SnapshotError[];
}

/** Options of both stores (defaults in SNAPSHOT_STORE_DEFAULTS). */
export interface SnapshotStoreOptions {
  /** Snapshots kept per shard (default 3, at least 1). */
  keep?: number;
  /** The largest snapshot read, in bytes (default 4 GiB). */
  maxBytes?: number;
}

/** The bucket of a job's snapshots: downpour-snap-<job>. */
export function snapshotBucket(job: string): string {
  return `${SNAPSHOT_STORE_DEFAULTS.bucketPrefix}${checkJobId(job)}`;
}

/** `<job>.shard-<k>.<generation, 10 digits>.dpsnap`. */
export function snapshotName(job: string, shard: number, generation: number): string {
  return `${job}.shard-${shard}.${String(generation).padStart(10, "0")}${SNAPSHOT_STORE_DEFAULTS.extension}`;
}

const NAME = /^([A-Za-z0-9_-]+)\.shard-(\d+)\.(\d{10,})\.dpsnap$/;

/** A snapshot store of one job: the operations of both kinds, on top of four primitives. */
export abstract class SnapshotStore {
  readonly job: string;
  readonly keep: number;
  readonly maxBytes: number;
  /** The newest generation known per shard (from a listing or a save). */
  readonly #generations = new Map<number, number>();

  protected constructor(job: string, options: SnapshotStoreOptions) {
    this.job = checkJobId(job);
    this.keep = options.keep ?? SNAPSHOT_STORE_DEFAULTS.keep;
    this.maxBytes = options.maxBytes ?? SNAPSHOT_STORE_DEFAULTS.maxBytes;
    if (!Number.isInteger(this.keep) || this.keep < 1) throw new InvalidArgumentError(`snapshot store: keep must be an integer >= 1, got ${this.keep}`);
    if (!(this.maxBytes > 0)) throw new InvalidArgumentError(`snapshot store: maxBytes must be a positive number, got ${this.maxBytes}`);
  }

  /** Where the snapshots are, in words ("directory /x", "bucket downpour-snap-j"). */
  abstract get where(): string;
  /** Every stored name with its size (any job, any shard; others are filtered out). */
  protected abstract names(): Promise<{ name: string; size: number }[]>;
  protected abstract read(name: string): Promise<Uint8Array>;
  protected abstract write(name: string, bytes: Uint8Array): Promise<void>;
  protected abstract remove(name: string): Promise<void>;
  /** Releases what the store holds (not the connection it was given). */
  async close(): Promise<void> {}

  /** This job's snapshots of `shard`, newest first. */
  async list(shard: number): Promise<SnapshotEntry[]> {
    const entries = await this.call("list", () => this.names());
    const found: SnapshotEntry[] = [];
    for (const { name, size } of entries) {
      const m = NAME.exec(name.slice(name.lastIndexOf("/") + 1));
      if (m === null || m[1] !== this.job || Number(m[2]) !== shard) continue;
      found.push({ name, shard, generation: Number(m[3]), size });
    }
    found.sort((a, b) => b.generation - a.generation);
    const newest = found[0]?.generation ?? 0;
    if (newest > (this.#generations.get(shard) ?? 0)) this.#generations.set(shard, newest);
    return found;
  }

  /** Saves the snapshot under the shard's next generation, then removes all but the newest `keep`. */
  async save(snapshot: ShardSnapshot | Uint8Array, shard?: number): Promise<SnapshotEntry> {
    const bytes = snapshot instanceof Uint8Array ? snapshot : encodeSnapshot(snapshot);
    const k = snapshot instanceof Uint8Array ? shard : snapshot.shard;
    if (!Number.isInteger(k)) throw new InvalidArgumentError("snapshot store: save(bytes, shard) needs the shard index");
    if (!this.#generations.has(k!)) await this.list(k!);
    const generation = (this.#generations.get(k!) ?? 0) + 1;
    this.#generations.set(k!, generation);
    const name = this.pathOf(snapshotName(this.job, k!, generation));
    await this.call("write", () => this.write(name, bytes), name);
    const entries = await this.list(k!);
    for (const old of entries.slice(this.keep)) await this.call("remove", () => this.remove(old.name), old.name);
    return { name, shard: k!, generation, size: bytes.length };
  }

  /** The newest snapshot of `shard` that reads and decodes, with the newer ones that did not; undefined when none does. */
  async latest(shard: number): Promise<LatestSnapshot | undefined> {
    const skipped: SnapshotError[] = [];
    for (const entry of await this.list(shard)) {
      try {
        if (entry.size > this.maxBytes) {
          throw new SnapshotError(`${entry.size} bytes, more than the limit of ${this.maxBytes}`, { snapshot: entry.name, reason: "limit" }, this.job);
        }
        const bytes = await this.call("read", () => this.read(entry.name), entry.name);
        return { snapshot: decodeSnapshot(bytes, { name: entry.name, maxBytes: this.maxBytes }), entry, skipped };
      } catch (error) {
        if (!(error instanceof SnapshotError)) throw error;
        skipped.push(error);
      }
    }
    return undefined;
  }

  /** The name a snapshot is stored under (a path for the directory store). */
  protected pathOf(name: string): string {
    return name;
  }

  /** Runs a store operation; a failure becomes a SnapshotError (reason "store") naming the store and snapshot. */
  private async call<T>(op: string, run: () => Promise<T>, name?: string): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof SnapshotError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new SnapshotError(`${op} in ${this.where} failed: ${message}`, { snapshot: name ?? `${this.job} (${this.where})`, reason: "store" }, this.job, { cause: error });
    }
  }
}

/** Snapshots as files in a directory (created when missing); each written atomically (temp file, fsync, rename). */
export class DirectorySnapshotStore extends SnapshotStore {
  private constructor(job: string, readonly dir: string, options: SnapshotStoreOptions) {
    super(job, options);
  }

  static async open(job: string, dir: string, options: SnapshotStoreOptions = {}): Promise<DirectorySnapshotStore> {
    if (typeof dir !== "string" || dir === "") throw new InvalidArgumentError(`snapshot store: the directory must be a path, got ${JSON.stringify(dir)}`);
    const store = new DirectorySnapshotStore(job, dir, options);
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      throw new SnapshotError(`cannot create the directory: ${(error as Error).message}`, { snapshot: dir, reason: "store" }, store.job, { cause: error });
    }
    return store;
  }

  get where(): string {
    return `directory ${this.dir}`;
  }

  protected override pathOf(name: string): string {
    return join(this.dir, name);
  }

  protected async names(): Promise<{ name: string; size: number }[]> {
    const prefix = `${this.job}.shard-`;
    const files = (await readdir(this.dir)).filter((f) => f.startsWith(prefix) && f.endsWith(SNAPSHOT_STORE_DEFAULTS.extension));
    const found: { name: string; size: number }[] = [];
    for (const file of files) {
      const path = join(this.dir, file);
      const info = await stat(path).catch(() => undefined);
      if (info?.isFile()) found.push({ name: path, size: info.size });
    }
    return found;
  }

  protected read(name: string): Promise<Uint8Array> {
    return readFile(name);
  }

  protected write(name: string, bytes: Uint8Array): Promise<void> {
    return writeFileAtomic(name, bytes, { fsync: true });
  }

  protected remove(name: string): Promise<void> {
    return rm(name, { force: true });
  }
}

/** Options of NatsSnapshotStore.open. */
export interface NatsSnapshotStoreOptions extends SnapshotStoreOptions {
  /** The bucket (default snapshotBucket(job)). */
  bucket?: string;
  /** Replicas of a bucket created here (default 1). */
  replicas?: number;
}

/** Snapshots as objects of a JetStream object store bucket (created when missing). An object is listed once whole. */
export class NatsSnapshotStore extends SnapshotStore {
  private constructor(job: string, readonly bucket: string, private readonly store: ObjectStore, options: SnapshotStoreOptions) {
    super(job, options);
  }

  static async open(connection: NatsConnection, job: string, options: NatsSnapshotStoreOptions = {}): Promise<NatsSnapshotStore> {
    const bucket = options.bucket ?? snapshotBucket(job);
    try {
      const store = await new Objm(connection).create(bucket, { replicas: options.replicas ?? SNAPSHOT_STORE_DEFAULTS.replicas });
      return new NatsSnapshotStore(job, bucket, store, options);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new SnapshotError(`cannot open the object store bucket (JetStream must be enabled on the server): ${message}`, { snapshot: `bucket ${bucket}`, reason: "store" }, job, { cause: error });
    }
  }

  get where(): string {
    return `bucket ${this.bucket}`;
  }

  protected async names(): Promise<{ name: string; size: number }[]> {
    const prefix = `${this.job}.shard-`;
    return (await this.store.list()).filter((o) => !o.deleted && o.name.startsWith(prefix)).map((o) => ({ name: o.name, size: o.size }));
  }

  protected async read(name: string): Promise<Uint8Array> {
    const bytes = await this.store.getBlob(name);
    if (bytes === null) throw new SnapshotError("not found (removed while being read)", { snapshot: name, reason: "store" }, this.job);
    return bytes;
  }

  protected async write(name: string, bytes: Uint8Array): Promise<void> {
    await this.store.putBlob({ name }, bytes);
  }

  protected async remove(name: string): Promise<void> {
    await this.store.delete(name);
  }
}

/**
 * The store a `--snapshots` value names: "nats" (the job's bucket over `connection`) or a directory path.
 */
export function openSnapshotStore(where: string, job: string, connection: NatsConnection | undefined, options: NatsSnapshotStoreOptions = {}): Promise<SnapshotStore> {
  if (where === "nats") {
    if (connection === undefined) throw new InvalidArgumentError('snapshot store "nats" needs a NATS connection');
    return NatsSnapshotStore.open(connection, job, options);
  }
  return DirectorySnapshotStore.open(job, where, options);
}
