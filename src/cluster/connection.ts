// Connecting to a NATS server or cluster: typed options with documented defaults (servers, token, user/password,
// nkey seed, creds file, TLS files, client name, reconnect forever with jittered waits), validated before dialing;
// a failed first connect becomes a ConnectionError that names the servers, the reason and what to check.
// watchConnection follows an open connection: its losses and returns, with how long this process's event loop had
// been stalled just before a loss (nats-server drops a client that does not read fast enough, a slow consumer,
// without telling it why: the client only sees the socket close), reported as ConnectionLostError or SlowConsumerError.
import { readFileSync } from "node:fs";
import { setInterval as repeat } from "node:timers";
import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import {
  type Authenticator,
  type ConnectionOptions,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
  nkeys,
  type Status,
  type TlsOptions,
} from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { DownpourError, InvalidArgumentError } from "../errors.js";
import { describeValue } from "../util/describe.js";
import { ClusterError } from "./errors.js";

/** Where to connect and how to authenticate. Every field is optional; defaults are in CONNECTION_DEFAULTS. */
export interface ClusterConnectionOptions {
  /** One server URL or several (a cluster): "nats://host:port", "tls://host:port" or "host:port". */
  servers?: string | readonly string[];
  /** A server token (authorization { token }). At most one of token, user, nkeySeed, credsFile. */
  token?: string;
  /** A user name (authorization { user, password }); `password` goes with it. */
  user?: string;
  password?: string;
  /** An nkey seed ("SU..."): the client signs the server's nonce with it. */
  nkeySeed?: string;
  /** Path of a .creds file (a user JWT and its nkey seed, as `nsc` writes it); read once, at connect. */
  credsFile?: string;
  /** TLS, as PEM file paths (read once, at connect): `ca` verifies the server; `cert` and `key` (both or neither)
   * are the client's own certificate for servers that verify clients. Any tls object requires TLS. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** The client name the server's monitoring shows. */
  name?: string;
  /** How long one server may take to accept the connection and answer the handshake, in ms, per server tried. */
  timeoutMs?: number;
  /** Wait between reconnect attempts to one server, in ms, plus a random jitter below reconnectJitterMs. */
  reconnectTimeWaitMs?: number;
  /** Upper bound of the random jitter added to each reconnect wait, in ms (plain TCP). */
  reconnectJitterMs?: number;
  /** Upper bound of the jitter for TLS connections, in ms (a TLS handshake costs a server more). */
  reconnectJitterTlsMs?: number;
}

/** The defaults of ClusterConnectionOptions (the one place they are written). Reconnects never stop
 * (maxReconnectAttempts -1): after a lost connection each server is retried every 1 s plus a random 0-0.5 s
 * (0-1 s over TLS), so peers that lose a server together do not return in one burst. The first connect does not
 * retry: when no server answers, connectCluster rejects. */
export const CONNECTION_DEFAULTS = {
  servers: "nats://127.0.0.1:4222",
  /** A function of the process id: "downpour-<pid>". */
  name: (): string => `downpour-${process.pid}`,
  timeoutMs: 5_000,
  reconnectTimeWaitMs: 1_000,
  reconnectJitterMs: 500,
  reconnectJitterTlsMs: 1_000,
  maxReconnectAttempts: -1,
} as const;

/** Why a connection failed: nothing listening, credentials refused, TLS failed, no answer in time, or else. */
export type ConnectionFailure = "refused" | "auth" | "tls" | "timeout" | "other";

/** The first connect to NATS failed. The message names the servers and what to check (--nats, --creds, ...). */
export class ConnectionError extends DownpourError {
  /** The servers that were tried, as given. */
  readonly servers: readonly string[];
  readonly reason: ConnectionFailure;

  constructor(message: string, fields: { servers: readonly string[]; reason: ConnectionFailure }, options?: { cause?: unknown }) {
    super(message, options);
    this.servers = fields.servers;
    this.reason = fields.reason;
  }
}

const KNOWN_KEYS = new Set<string>([
  "servers",
  "token",
  "user",
  "password",
  "nkeySeed",
  "credsFile",
  "tls",
  "name",
  "timeoutMs",
  "reconnectTimeWaitMs",
  "reconnectJitterMs",
  "reconnectJitterTlsMs",
]);

/**
 * Connects to the first server that answers (in the order given, not shuffled) and returns the connection, which
 * then reconnects forever. Resolves once the handshake (and authentication) succeeded; rejects with a
 * ConnectionError when every server failed once (each within timeoutMs), or an InvalidArgumentError for an option
 * of the wrong type or a TLS/creds file that cannot be read (before dialing). The caller owns the connection and
 * closes (or drains) it.
 */
export async function connectCluster(options: ClusterConnectionOptions = {}): Promise<NatsConnection> {
  const natsOptions = natsConnectionOptions(options);
  const servers = [natsOptions.servers ?? []].flat();
  try {
    return await connect(natsOptions);
  } catch (error) {
    throw connectionError(error, servers, natsOptions.timeout ?? CONNECTION_DEFAULTS.timeoutMs);
  }
}

/** Whether `value` is an open nats.js connection rather than options to open one. */
export function isNatsConnection(value: NatsConnection | ClusterConnectionOptions): value is NatsConnection {
  return typeof (value as NatsConnection).publish === "function" && typeof (value as NatsConnection).subscribe === "function";
}

/** The nats.js ConnectionOptions for `options` (defaults filled, files read); throws InvalidArgumentError. */
export function natsConnectionOptions(options: ClusterConnectionOptions = {}): ConnectionOptions {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`connectCluster: options must be an object, got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS.has(key)) {
      throw new InvalidArgumentError(`connectCluster: unknown option "${key}" (known: ${[...KNOWN_KEYS].join(", ")})`);
    }
  }
  const servers = serverList(options.servers);
  const result: ConnectionOptions = {
    servers,
    name: optionalString(options.name, "name") ?? CONNECTION_DEFAULTS.name(),
    timeout: duration(options.timeoutMs, "timeoutMs", CONNECTION_DEFAULTS.timeoutMs, true),
    reconnect: true,
    maxReconnectAttempts: CONNECTION_DEFAULTS.maxReconnectAttempts,
    waitOnFirstConnect: false,
    noRandomize: true,
    reconnectTimeWait: duration(options.reconnectTimeWaitMs, "reconnectTimeWaitMs", CONNECTION_DEFAULTS.reconnectTimeWaitMs),
    reconnectJitter: duration(options.reconnectJitterMs, "reconnectJitterMs", CONNECTION_DEFAULTS.reconnectJitterMs),
    reconnectJitterTLS: duration(options.reconnectJitterTlsMs, "reconnectJitterTlsMs", CONNECTION_DEFAULTS.reconnectJitterTlsMs),
  };
  Object.assign(result, credentials(options));
  if (options.tls !== undefined) result.tls = { ...tlsOptions(options.tls), ...ipIdentityCheck(servers) };
  return result;
}

function serverList(value: unknown): string[] {
  if (value === undefined) return [CONNECTION_DEFAULTS.servers];
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) {
    throw new InvalidArgumentError(`connectCluster: servers must be a URL or a non-empty array of URLs, got ${describeValue(value)}`);
  }
  return list.map((server, i) => checkServer(server, typeof value === "string" ? "servers" : `servers[${i}]`));
}

/** "nats://h:p", "tls://h:p", "h:p" or "h"; returns it trimmed. */
function checkServer(server: unknown, field: string): string {
  if (typeof server !== "string" || server.trim() === "") {
    throw new InvalidArgumentError(
      `connectCluster: ${field} must be a server URL such as nats://127.0.0.1:4222, got ${describeValue(server)}`,
    );
  }
  const text = server.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== "nats" && scheme !== "tls") {
    throw new InvalidArgumentError(`connectCluster: ${field} "${text}" has the scheme ${scheme}://; use nats:// or tls://`);
  }
  let url: URL;
  try {
    url = new URL(scheme === undefined ? `nats://${text}` : text);
  } catch (cause) {
    throw new InvalidArgumentError(`connectCluster: ${field} "${text}" is not a server URL such as nats://127.0.0.1:4222`, { cause });
  }
  if (url.hostname === "" || /\s/.test(text) || (url.pathname !== "" && url.pathname !== "/")) {
    throw new InvalidArgumentError(`connectCluster: ${field} "${text}" is not a server URL such as nats://127.0.0.1:4222`);
  }
  return text;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") {
    throw new InvalidArgumentError(`connectCluster: ${field} must be a non-empty string, got ${describeValue(value)}`);
  }
  return value;
}

function duration(value: unknown, field: string, fallback: number, positive = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (positive && value === 0)) {
    const what = positive ? "a positive" : "a non-negative";
    throw new InvalidArgumentError(`connectCluster: ${field} must be ${what} number of milliseconds, got ${describeValue(value)}`);
  }
  return value;
}

/** token, user/password, an nkey authenticator or a creds authenticator; at most one of them. */
function credentials(options: ClusterConnectionOptions): Partial<ConnectionOptions> {
  const token = optionalString(options.token, "token");
  const user = optionalString(options.user, "user");
  const password = options.password === undefined ? undefined : stringField(options.password, "password");
  const seed = optionalString(options.nkeySeed, "nkeySeed");
  const credsFile = optionalString(options.credsFile, "credsFile");
  const given = [token && "token", user && "user", seed && "nkeySeed", credsFile && "credsFile"].filter(Boolean);
  if (given.length > 1) {
    throw new InvalidArgumentError(`connectCluster: give one way to authenticate, not ${given.join(" and ")}`);
  }
  if (password !== undefined && user === undefined) {
    throw new InvalidArgumentError("connectCluster: password needs a user");
  }
  if (token !== undefined) return { token };
  if (user !== undefined) return password === undefined ? { user } : { user, pass: password };
  if (seed !== undefined) return { authenticator: nkeySeedAuthenticator(seed) };
  if (credsFile !== undefined) return { authenticator: credsFileAuthenticator(credsFile) };
  return {};
}

function stringField(value: unknown, field: string): string {
  if (typeof value !== "string") throw new InvalidArgumentError(`connectCluster: ${field} must be a string, got ${describeValue(value)}`);
  return value;
}

function nkeySeedAuthenticator(seed: string): Authenticator {
  const bytes = new TextEncoder().encode(seed.trim());
  try {
    nkeys.fromSeed(bytes);
  } catch (cause) {
    throw new InvalidArgumentError("connectCluster: nkeySeed is not an nkey seed (it starts with S, e.g. SU... for a user)", { cause });
  }
  return nkeyAuthenticator(bytes);
}

function credsFileAuthenticator(path: string): Authenticator {
  const bytes = readOptionFile(path, "credsFile");
  const text = new TextDecoder().decode(bytes);
  if (!/-----BEGIN NATS USER JWT-----/.test(text) || !/-----BEGIN USER NKEY SEED-----/.test(text)) {
    throw new InvalidArgumentError(`connectCluster: credsFile ${path} is not a NATS .creds file (a user JWT and an nkey seed)`);
  }
  const authenticator = credsAuthenticator(bytes);
  try {
    authenticator("");
  } catch (cause) {
    throw new InvalidArgumentError(`connectCluster: credsFile ${path} holds no usable JWT and seed`, { cause });
  }
  return authenticator;
}

function tlsOptions(value: unknown): TlsOptions {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`connectCluster: tls must be an object { ca?, cert?, key? } of file paths, got ${describeValue(value)}`);
  }
  const tls = value as Record<string, unknown>;
  for (const key of Object.keys(tls)) {
    if (key !== "ca" && key !== "cert" && key !== "key")
      throw new InvalidArgumentError(`connectCluster: unknown option "tls.${key}" (known: ca, cert, key)`);
  }
  const ca = optionalString(tls.ca, "tls.ca");
  const cert = optionalString(tls.cert, "tls.cert");
  const key = optionalString(tls.key, "tls.key");
  if ((cert === undefined) !== (key === undefined)) {
    throw new InvalidArgumentError("connectCluster: tls.cert and tls.key go together (the client's certificate and its private key)");
  }
  const result: TlsOptions = {};
  if (ca !== undefined) result.ca = pemFile(ca, "tls.ca");
  if (cert !== undefined) result.cert = pemFile(cert, "tls.cert");
  if (key !== undefined) result.key = pemFile(key, "tls.key");
  return result;
}

function pemFile(path: string, field: string): string {
  const text = new TextDecoder().decode(readOptionFile(path, field));
  if (!text.includes("-----BEGIN ")) throw new InvalidArgumentError(`connectCluster: ${field} ${path} is not a PEM file`);
  return text;
}

function readOptionFile(path: string, field: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new InvalidArgumentError(`connectCluster: ${field} ${path} cannot be read (${detail})`, { cause });
  }
}

/**
 * nats.js (3.4) sets no TLS server name for a server given by IP address, so Node checks the certificate against
 * "localhost". This check accepts a certificate (already verified against the CA) that names one of the IP
 * addresses in `servers` instead; a name the client did set is checked as usual.
 */
function ipIdentityCheck(servers: readonly string[]): { checkServerIdentity?: typeof checkServerIdentity } {
  const ips = [...new Set(servers.map(hostOf).filter((host) => isIP(host) !== 0))];
  if (ips.length === 0) return {};
  return {
    checkServerIdentity: (hostname: string, cert: PeerCertificate) => {
      const error = checkServerIdentity(hostname, cert);
      if (error === undefined || (hostname !== "localhost" && hostname !== "")) return error;
      return ips.some((ip) => checkServerIdentity(ip, cert) === undefined) ? undefined : error;
    },
  };
}

function hostOf(server: string): string {
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `nats://${server}`);
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_|CERT_|HOSTNAME_MISMATCH)/;
const REFUSED_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "EPIPE"]);

/** The reason a nats.js connect error stands for (looking at its class name, code, message and causes). */
export function classifyConnectError(error: unknown): ConnectionFailure {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = String((e as { code?: unknown }).code ?? "");
    const text = `${e.name} ${e.message}`;
    if (e.name === "AuthorizationError" || e.name === "UserAuthenticationExpiredError" || /authoriz|authenticat/i.test(e.message)) {
      return "auth";
    }
    if (TLS_CODES.test(code) || /certificate|self[- ]signed|\btls\b|\bssl\b|handshake|altname/i.test(text)) return "tls";
    if (e.name === "TimeoutError" || code === "ETIMEDOUT" || /timed? ?out/i.test(e.message)) return "timeout";
    if (REFUSED_CODES.has(code) || /refused/i.test(e.message)) return "refused";
  }
  return "other";
}

function connectionError(error: unknown, servers: readonly string[], timeoutMs: number): ConnectionError {
  const reason = classifyConnectError(error);
  const where = servers.length === 1 ? servers[0] : `any of ${servers.join(", ")}`;
  const detail = error instanceof Error ? error.message : String(error);
  const advice: Record<ConnectionFailure, string> = {
    refused: "nothing accepts connections there: start nats-server or check --nats",
    auth: `the server refused the credentials (${detail}): check --creds / --user / --password / --token / --nkey`,
    tls: `TLS failed (${detail}): check --tls-ca / --tls-cert / --tls-key`,
    timeout: `no server answered within ${timeoutMs} ms: check --nats (host, port, firewall)`,
    other: `${detail}: check --nats`,
  };
  return new ConnectionError(`cannot connect to NATS at ${where}: ${advice[reason]}`, { servers, reason }, { cause: error });
}

/** How watchConnection judges a loss. Defaults in WATCH_DEFAULTS. */
export interface WatchOptions {
  /** How often the event loop's lag is sampled, in ms (default 100). */
  sampleMs?: number;
  /** A stall of the event loop at least this long in the last lookbackMs before a loss makes it a slow consumer, in
   *  ms (default 250; nats-server's write_deadline is 10 s by default, so a loss after a short stall is reported as a
   *  slow consumer only when the server was configured stricter). */
  slowStallMs?: number;
  /** How far back before a loss stalls count, in ms (default 15 000). */
  lookbackMs?: number;
}

/** The defaults of WatchOptions. */
export const WATCH_DEFAULTS = Object.freeze({ sampleMs: 100, slowStallMs: 250, lookbackMs: 15_000 });

/** A loss of the connection: when, the server it was on, and the longest event-loop stall just before. */
export interface ConnectionLoss {
  at: number;
  server: string;
  stalledMs: number;
  /** Whether the stall makes this a slow consumer (stalledMs >= slowStallMs). */
  slowConsumer: boolean;
}

/** What watchConnection reports. */
export interface ConnectionEvents {
  /** The connection was lost (nats.js "disconnect"); it is reconnecting. */
  lost?(loss: ConnectionLoss): void;
  /** It is back (nats.js "reconnect") after a loss, on `server`, `downMs` later. */
  back?(loss: ConnectionLoss, back: { server: string; downMs: number }): void;
}

/** The connection of `client` (a peer, a shard, a worker) was lost and came back: what it sent or was sent while it
 *  was down is gone, and what depends on it is sent again. `slowConsumer` when this process had stalled before. */
export class ConnectionLostError extends ClusterError {
  readonly client: string;
  /** The subject whose messages may have been lost (the client's inbox or the subjects it serves). */
  readonly subject: string;
  readonly server: string;
  readonly downMs: number;
  readonly stalledMs: number;

  constructor(message: string, fields: { client: string; subject: string; server: string; downMs: number; stalledMs: number }, job?: string) {
    super(message, job);
    this.client = fields.client;
    this.subject = fields.subject;
    this.server = fields.server;
    this.downMs = fields.downMs;
    this.stalledMs = fields.stalledMs;
  }
}

/** A ConnectionLostError after a stall of this process: nats-server dropped it as a slow consumer (it had stopped
 *  reading while messages piled up at the server), with what the server had queued for it. */
export class SlowConsumerError extends ConnectionLostError {}

/**
 * The error that reports `loss` of `client`'s connection, back after `downMs`: a SlowConsumerError when the process had
 * stalled, a ConnectionLostError otherwise. `recovery` says what is done about what was lost.
 */
export function connectionLossError(loss: ConnectionLoss, back: { server: string; downMs: number }, who: { client: string; subject: string; recovery: string }, job?: string): ConnectionLostError {
  const fields = { client: who.client, subject: who.subject, server: loss.server, downMs: back.downMs, stalledMs: loss.stalledMs };
  const where = `the connection of ${who.client} to NATS at ${loss.server}`;
  if (loss.slowConsumer) {
    return new SlowConsumerError(
      `${where} was dropped after this process stalled for ${loss.stalledMs} ms: the server cut it as a slow consumer, losing what it had queued on ${who.subject}; back on ${back.server} after ${back.downMs} ms, ${who.recovery}`,
      fields,
      job,
    );
  }
  return new ConnectionLostError(`${where} was lost (messages on ${who.subject} in flight are gone); back on ${back.server} after ${back.downMs} ms, ${who.recovery}`, fields, job);
}

/** A running watch; stop() ends it (idempotent). */
export interface ConnectionWatch {
  stop(): void;
}

/**
 * Follows `nc`'s status events and samples this process's event-loop lag, calling `events.lost` on each loss and
 * `events.back` when the connection returns. A listener that throws is skipped (its error goes to console.error: the
 * listeners are this library's own). The sampling timer does not keep the process alive. Ends on stop() or when the
 * connection closes.
 */
export function watchConnection(nc: NatsConnection, events: ConnectionEvents, options: WatchOptions = {}): ConnectionWatch {
  const o = { ...WATCH_DEFAULTS, ...options };
  const stalls: { at: number; ms: number }[] = [];
  let lastSample = Date.now();
  const sampler = repeat(() => {
    const now = Date.now();
    const lag = now - lastSample - o.sampleMs;
    lastSample = now;
    if (lag >= o.slowStallMs / 2) stalls.push({ at: now, ms: lag });
    while (stalls.length > 0 && stalls[0]!.at < now - o.lookbackMs) stalls.shift();
  }, o.sampleMs);
  sampler.unref?.();
  const iterator = nc.status() as AsyncIterable<Status> & { stop?: () => void };
  let stopped = false;
  let loss: ConnectionLoss | undefined;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(sampler);
    iterator.stop?.();
  };
  void (async () => {
    try {
      for await (const status of iterator) {
        if (stopped) break;
        if (status.type === "disconnect" && loss === undefined) {
          const now = Date.now();
          // A stall still going on when the loss is read (the sampler has not run since) counts too.
          const stalledMs = Math.max(now - lastSample - o.sampleMs, ...stalls.map((s) => s.ms), 0);
          loss = { at: now, server: status.server, stalledMs, slowConsumer: stalledMs >= o.slowStallMs };
          notify(() => events.lost?.(loss!));
        } else if (status.type === "reconnect" && loss !== undefined) {
          const was = loss;
          loss = undefined;
          notify(() => events.back?.(was, { server: status.server, downMs: Date.now() - was.at }));
        } else if (status.type === "close") break;
      }
    } finally {
      stop();
    }
  })();
  return { stop };
}

function notify(call: () => void): void {
  try {
    call();
  } catch (error) {
    console.error(`downpour: a connection listener failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
