// A worker's client of a sparse layer's rows (issue 12), in the spirit of ps-lite's KVWorker over row keys: pull
// the rows of a portion's distinct features and push their gradients, the keys grouped by owning shard
// (rowOwner), cut into messages that fit max_payload, sent to every shard in parallel; pushes carry (worker, seq)
// and are retried with the same seq, so a shard applies each once. A small cache of recently pulled rows answers a
// pull without a request while the row is at most `staleness` clocks old (SSP's bound; tick() is one clock, one
// portion), so the frequent features of a power law are not pulled on every portion.
import { type NatsConnection, NoRespondersError, TimeoutError } from "@nats-io/nats-core";
import { InvalidArgumentError } from "../errors.js";
import { LITTLE_ENDIAN } from "./chunks.js";
import { readMeta } from "./ps-protocol.js";
import {
  bodyFloatsView,
  encodeRowKeys,
  ROWS_PROTOCOL_VERSION,
  type RowFailure,
  type RowReplyMeta,
  type RowRequestMeta,
  type RowShardInfo,
  rowHeaders,
  rowBodyBytes,
  rowOwner,
  rowSubjects,
  SparseRowError,
} from "./sparse-protocol.js";

/** Options of SparseRowClient.connect; defaults in SPARSE_CLIENT_DEFAULTS. */
export interface SparseRowClientOptions {
  job: string;
  shards: number;
  /** Rows of the whole sparse layer and their width (the shards must say the same). */
  features: number;
  units: number;
  connection: NatsConnection;
  /** This worker's id (u32), unique in the job. */
  worker: number;
  /** Its name in the shards' messages (default "worker <worker>"). */
  name?: string;
  specHash?: string;
  /** Clocks a cached row may be used for after its pull (default 4; 0 turns the cache off). */
  staleness?: number;
  /** The most rows the cache holds (default 65 536). */
  cacheRows?: number;
  /** One attempt's wait for its reply, in ms (default 10 000). */
  requestTimeoutMs?: number;
  /** Attempts per message (default 3). */
  attempts?: number;
  /** How long connect waits for every shard's info, in ms (default 30 000). */
  connectTimeoutMs?: number;
}

export const SPARSE_CLIENT_DEFAULTS = Object.freeze({
  specHash: "",
  staleness: 4,
  cacheRows: 65_536,
  requestTimeoutMs: 10_000,
  attempts: 3,
  connectTimeoutMs: 30_000,
  retryDelayMs: 100,
  /** Bytes of max_payload left to headers. */
  headerRoom: 2048,
});

/** What the client has moved (bodies, in bytes). */
export interface SparseClientStats {
  pulls: number;
  pushes: number;
  /** Rows asked for by pull() calls (before the cache). */
  rowsAsked: number;
  /** Of those, answered by the cache. */
  cacheHits: number;
  rowsPulled: number;
  rowsPushed: number;
  bytesIn: number;
  bytesOut: number;
  messages: number;
  retries: number;
}

/** Recently pulled rows: key -> slot by open addressing, each slot with the clock of its pull. */
class RowCache {
  private readonly keys: Int32Array;
  private readonly slots: Int32Array;
  private readonly clocks: Int32Array;
  private readonly values: Float32Array;
  private used = 0;

  constructor(
    private readonly capacity: number,
    private readonly units: number,
  ) {
    const size = capacity > 0 ? 2 ** Math.ceil(Math.log2(2 * capacity)) : 1;
    this.keys = new Int32Array(size).fill(-1);
    this.slots = new Int32Array(size);
    this.clocks = new Int32Array(Math.max(1, capacity));
    this.values = new Float32Array(Math.max(1, capacity) * units);
  }

  private probe(key: number): number {
    const mask = this.keys.length - 1;
    let t = Math.imul(key, 0x9e3779b1) >>> 0 & mask;
    while (this.keys[t] !== -1 && this.keys[t] !== key) t = (t + 1) & mask;
    return t;
  }

  /** Copies key's row into out[at..] when cached at clock >= oldest; returns whether it did. */
  read(key: number, oldest: number, out: Float32Array, at: number): boolean {
    if (this.capacity === 0) return false;
    const t = this.probe(key);
    if (this.keys[t] !== key) return false;
    const slot = this.slots[t]!;
    if (this.clocks[slot]! < oldest) return false;
    copyRow(this.values, slot * this.units, out, at, this.units);
    return true;
  }

  /** Stores key's row (from row[at..]) pulled at `clock`; when full, drops the rows older than `oldest` first. */
  write(key: number, clock: number, oldest: number, row: Float32Array, at: number): void {
    if (this.capacity === 0) return;
    let t = this.probe(key);
    let slot: number;
    if (this.keys[t] === key) slot = this.slots[t]!;
    else {
      if (this.used === this.capacity && !this.evict(oldest)) return;
      t = this.probe(key);
      slot = this.used++;
      this.keys[t] = key;
      this.slots[t] = slot;
    }
    this.clocks[slot] = clock;
    copyRow(row, at, this.values, slot * this.units, this.units);
  }

  // Keeps the rows pulled at clock >= oldest (compacted); false when none could go.
  private evict(oldest: number): boolean {
    const kept: number[] = [];
    for (let t = 0; t < this.keys.length; t++) if (this.keys[t] !== -1 && this.clocks[this.slots[t]!]! >= oldest) kept.push(t);
    if (kept.length === this.used) return false;
    const entries = kept.map((t) => ({ key: this.keys[t]!, slot: this.slots[t]! }));
    this.keys.fill(-1);
    entries.forEach((e, i) => {
      this.values.copyWithin(i * this.units, e.slot * this.units, (e.slot + 1) * this.units);
      this.clocks[i] = this.clocks[e.slot]!;
      const t = this.probe(e.key);
      this.keys[t] = e.key;
      this.slots[t] = i;
    });
    this.used = entries.length;
    return true;
  }
}

type ResolvedClient = Required<Omit<SparseRowClientOptions, "connection">>;

/** A worker's pulls and pushes of sparse rows. */
export class SparseRowClient {
  readonly units: number;
  readonly features: number;
  /** Clocks ticked so far (portions). */
  clock = 0;
  private readonly cache: RowCache;
  private readonly rowsPerMessage: number;
  private seq = 0;
  private nextId = 1;
  private readonly counts: SparseClientStats = { pulls: 0, pushes: 0, rowsAsked: 0, cacheHits: 0, rowsPulled: 0, rowsPushed: 0, bytesIn: 0, bytesOut: 0, messages: 0, retries: 0 };

  private constructor(
    private readonly o: ResolvedClient,
    private readonly nc: NatsConnection,
  ) {
    this.units = o.units;
    this.features = o.features;
    this.cache = new RowCache(o.staleness > 0 ? o.cacheRows : 0, o.units);
    const payload = nc.info?.max_payload ?? 1024 * 1024;
    this.rowsPerMessage = Math.max(1, Math.floor((payload - SPARSE_CLIENT_DEFAULTS.headerRoom) / (4 + 4 * o.units)));
  }

  /** Waits for every shard's rows info and checks it says this job's shape; rejects with SparseRowError "mismatch". */
  static async connect(options: SparseRowClientOptions): Promise<SparseRowClient> {
    if (!LITTLE_ENDIAN) throw new InvalidArgumentError("sparse rows travel little-endian; this engine is big-endian");
    const o = resolveClientOptions(options);
    const client = new SparseRowClient(o, options.connection);
    await Promise.all(Array.from({ length: o.shards }, (_, shard) => client.checkShard(shard)));
    return client;
  }

  get stats(): SparseClientStats {
    return { ...this.counts };
  }

  /** One clock (a portion) passed: cached rows age by one. */
  tick(): void {
    this.clock++;
  }

  /**
   * Resolves once `into` (keys.length x units) holds the rows of `keys` (distinct, in [0, features)): cached rows at
   * most `staleness` clocks old, the others pulled from their shards. The caller must not touch `into` until then.
   */
  async pull(keys: Int32Array, into: Float32Array): Promise<void> {
    const u = this.units;
    if (into.length !== keys.length * u) throw new InvalidArgumentError(`SparseRowClient.pull: ${keys.length} keys need ${keys.length * u} floats, got ${into.length}`);
    this.counts.pulls++;
    this.counts.rowsAsked += keys.length;
    const oldest = this.clock - this.o.staleness;
    const { order, bounds } = this.group(keys, (i) => !this.cache.read(keys[i]!, oldest, into, i * u));
    this.counts.cacheHits += keys.length - order.length;
    await Promise.all(this.messages(bounds, (shard, from, to) => this.pullPart(shard, keys, order.subarray(from, to), into, oldest)));
  }

  /**
   * Sends the gradient rows `grads` (keys.length x units) of `keys` (distinct) to their shards. Copies what it
   * needs before returning; resolves once every shard applied its part (or had, for a retry).
   */
  push(keys: Int32Array, grads: Float32Array): Promise<void> {
    const u = this.units;
    if (grads.length !== keys.length * u) throw new InvalidArgumentError(`SparseRowClient.push: ${keys.length} keys need ${keys.length * u} floats, got ${grads.length}`);
    this.counts.pushes++;
    const { order, bounds } = this.group(keys, () => true);
    const parts = this.messages(bounds, (shard, from, to) => {
      const n = to - from;
      const body = new Uint8Array(rowBodyBytes(n, u));
      const partKeys = new Int32Array(body.buffer, 0, n);
      const partRows = new Float32Array(body.buffer, 4 * n, n * u);
      for (let j = 0; j < n; j++) {
        const i = order[from + j]!;
        partKeys[j] = keys[i]!;
        copyRow(grads, i * u, partRows, j * u, u);
      }
      return this.pushPart(shard, n, body);
    });
    return Promise.all(parts).then(() => undefined);
  }

  // One call per message: each shard's positions [bounds[s], bounds[s+1]) cut into rowsPerMessage.
  private messages(bounds: Int32Array, send: (shard: number, from: number, to: number) => Promise<void>): Promise<void>[] {
    const sent: Promise<void>[] = [];
    for (let shard = 0; shard < this.o.shards; shard++) {
      for (let from = bounds[shard]!; from < bounds[shard + 1]!; from += this.rowsPerMessage) sent.push(send(shard, from, Math.min(bounds[shard + 1]!, from + this.rowsPerMessage)));
    }
    return sent;
  }

  // The positions of the keys `want` accepts, grouped by owning shard (a counting sort): shard s's are
  // order[bounds[s] .. bounds[s+1]).
  private group(keys: Int32Array, want: (i: number) => boolean): { order: Int32Array; bounds: Int32Array } {
    const shards = this.o.shards;
    const owners = new Int32Array(keys.length);
    const bounds = new Int32Array(shards + 1);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (!(key >= 0 && key < this.features)) throw new InvalidArgumentError(`SparseRowClient: key ${key} at position ${i} is outside [0, ${this.features})`);
      const owner = want(i) ? rowOwner(key, shards) : -1;
      owners[i] = owner;
      if (owner >= 0) bounds[owner + 1]!++;
    }
    for (let s = 0; s < shards; s++) bounds[s + 1]! += bounds[s]!;
    const order = new Int32Array(bounds[shards]!);
    const next = bounds.slice(0, shards);
    for (let i = 0; i < keys.length; i++) if (owners[i]! >= 0) order[next[owners[i]!]!++] = i;
    return { order, bounds };
  }

  private async pullPart(shard: number, keys: Int32Array, positions: Int32Array, into: Float32Array, oldest: number): Promise<void> {
    const u = this.units;
    const partKeys = new Int32Array(positions.length);
    for (let j = 0; j < positions.length; j++) partKeys[j] = keys[positions[j]!]!;
    const { data } = await this.request(shard, "pull", { count: partKeys.length }, encodeRowKeys(partKeys));
    if (data.length !== 4 * partKeys.length * u) this.fail(shard, "pull", "mismatch", `a reply of ${data.length} bytes for ${partKeys.length} rows`, partKeys.length, 1, "length");
    const rows = bodyFloatsView(data, 0, partKeys.length * u);
    for (let j = 0; j < positions.length; j++) {
      const i = positions[j]!;
      copyRow(rows, j * u, into, i * u, u);
      this.cache.write(partKeys[j]!, this.clock, oldest, rows, j * u);
    }
    this.counts.rowsPulled += partKeys.length;
  }

  private async pushPart(shard: number, rows: number, body: Uint8Array): Promise<void> {
    await this.request(shard, "push", { count: rows, seq: ++this.seq }, body);
    this.counts.rowsPushed += rows;
  }

  // One message to one shard, retried on a timeout or no responders with the same metadata but a new id.
  private async request(shard: number, op: "pull" | "push", fields: { count: number; seq?: number }, body: Uint8Array): Promise<{ meta: RowReplyMeta; data: Uint8Array }> {
    const subject = rowSubjects(this.o.job, shard)[op];
    let last = "";
    for (let attempt = 1; attempt <= this.o.attempts; attempt++) {
      if (attempt > 1) this.counts.retries++;
      const id = this.nextId++ >>> 0;
      const meta: RowRequestMeta = { v: ROWS_PROTOCOL_VERSION, job: this.o.job, spec: this.o.specHash, from: this.o.name, worker: this.o.worker, id, ...fields };
      this.counts.messages++;
      this.counts.bytesOut += body.length;
      try {
        const msg = await this.nc.request(subject, body, { timeout: this.o.requestTimeoutMs, headers: rowHeaders(meta) });
        this.counts.bytesIn += msg.data.length;
        const reply = readMeta(msg.headers, subject, this.o.job) as unknown as RowReplyMeta;
        if (reply.error) this.fail(shard, op, "refused", reply.error.message, fields.count, attempt, reply.error.field);
        if (reply.id !== id || reply.shard !== shard) this.fail(shard, op, "mismatch", `a reply for shard ${reply.shard} request ${reply.id}, expected shard ${shard} request ${id}`, fields.count, attempt, "id");
        return { meta: reply, data: msg.data };
      } catch (error) {
        const failure = failureOf(error);
        if (!failure) throw error;
        last = failure === "timeout" ? `no reply within ${this.o.requestTimeoutMs} ms` : "no shard subscribed";
        await new Promise((resolve) => setTimeout(resolve, SPARSE_CLIENT_DEFAULTS.retryDelayMs));
      }
    }
    return this.fail(shard, op, "timeout", last, fields.count, this.o.attempts);
  }

  private fail(shard: number, op: "pull" | "push" | "info", reason: RowFailure, cause: string, rows: number, attempts: number, field?: string): never {
    const what = `${op} of ${rows} sparse rows ${op === "push" ? "to" : "from"} shard ${shard} of job ${this.o.job}`;
    throw new SparseRowError(`${what} failed after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${cause}`, { shard, op, reason, rows, attempts, ...(field ? { field } : {}) }, this.o.job);
  }

  // Asks shard's info until it answers (or connectTimeoutMs passes) and checks its shape.
  private async checkShard(shard: number): Promise<void> {
    const subject = rowSubjects(this.o.job, shard).info;
    const deadline = Date.now() + this.o.connectTimeoutMs;
    let attempts = 0;
    for (;;) {
      attempts++;
      try {
        const msg = await this.nc.request(subject, new Uint8Array(0), { timeout: Math.min(2000, this.o.connectTimeoutMs) });
        this.checkInfo(shard, JSON.parse(new TextDecoder().decode(msg.data)) as RowShardInfo, attempts);
        return;
      } catch (error) {
        if (error instanceof SparseRowError || !failureOf(error) || Date.now() >= deadline) {
          if (error instanceof SparseRowError) throw error;
          this.fail(shard, "info", failureOf(error) ?? "closed", `no rows shard answered within ${this.o.connectTimeoutMs} ms (${(error as Error).message})`, 0, attempts);
        }
        await new Promise((resolve) => setTimeout(resolve, SPARSE_CLIENT_DEFAULTS.retryDelayMs));
      }
    }
  }

  private checkInfo(shard: number, info: RowShardInfo, attempts: number): void {
    const expect: [keyof RowShardInfo, unknown][] = [["shard", shard], ["shards", this.o.shards], ["features", this.features], ["units", this.units], ["spec", this.o.specHash], ["job", this.o.job]];
    for (const [field, value] of expect) {
      if (info[field] !== value) this.fail(shard, "info", "mismatch", `the shard says ${field} ${JSON.stringify(info[field])}, this worker expects ${JSON.stringify(value)}`, 0, attempts, field);
    }
  }
}

/** Copies `n` floats from[a ..] to to[b ..] (a loop: no subarray objects per row). */
function copyRow(from: Float32Array, a: number, to: Float32Array, b: number, n: number): void {
  for (let j = 0; j < n; j++) to[b + j] = from[a + j]!;
}

function failureOf(error: unknown): RowFailure | undefined {
  const cause = (error as { cause?: unknown })?.cause;
  if (error instanceof TimeoutError || cause instanceof TimeoutError) return "timeout";
  if (error instanceof NoRespondersError || cause instanceof NoRespondersError) return "no-responders";
  return undefined;
}

function resolveClientOptions(options: SparseRowClientOptions): ResolvedClient {
  const d = SPARSE_CLIENT_DEFAULTS;
  const o = {
    job: options.job, shards: options.shards, features: options.features, units: options.units, worker: options.worker,
    name: options.name ?? `worker ${options.worker}`,
    specHash: options.specHash ?? d.specHash,
    staleness: options.staleness ?? d.staleness,
    cacheRows: options.cacheRows ?? d.cacheRows,
    requestTimeoutMs: options.requestTimeoutMs ?? d.requestTimeoutMs,
    attempts: options.attempts ?? d.attempts,
    connectTimeoutMs: options.connectTimeoutMs ?? d.connectTimeoutMs,
  };
  const counts: [string, number, number][] = [["shards", o.shards, 1], ["units", o.units, 1], ["features", o.features, 1], ["staleness", o.staleness, 0], ["cacheRows", o.cacheRows, 0], ["attempts", o.attempts, 1], ["requestTimeoutMs", o.requestTimeoutMs, 1], ["connectTimeoutMs", o.connectTimeoutMs, 1]];
  for (const [name, value, min] of counts) {
    if (!(Number.isInteger(value) && value >= min)) throw new InvalidArgumentError(`SparseRowClient: ${name} must be an integer >= ${min}, got ${value}`);
  }
  if (!(Number.isInteger(o.worker) && o.worker >= 0 && o.worker <= 0xffffffff)) throw new InvalidArgumentError(`SparseRowClient: worker must be an integer in [0, 2^32), got ${o.worker}`);
  return o;
}
