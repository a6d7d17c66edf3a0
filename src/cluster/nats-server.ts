// Starting a real nats-server process: on a free 127.0.0.1 port, in its own temp dir (config, JetStream store),
// ready once it sends a client its INFO line; stopped with SIGTERM (then SIGKILL), and killed at process exit if
// still running. `downpour cluster` uses it for its embedded server; the tests use it for theirs.
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join, relative, resolve } from "node:path";
import { DownpourError, InvalidArgumentError } from "../errors.js";

/** The nats-server binary is not on PATH (nor in the usual sbin/bin folders); the message says how to install it. */
export class NatsServerMissingError extends DownpourError {}

/** How to configure one server. Every field is optional; the defaults are in the comments. */
export interface NatsServerOptions {
  /** max_payload in bytes (default: the server's own, 1 MB). */
  maxPayload?: number;
  /** Client authorization (default: none). */
  auth?: { user: string; password: string } | { token: string };
  /** TLS for clients: PEM file paths (default: plain TCP). With `ca`, the server also verifies client certs
   * only if `verify` is true (default false). */
  tls?: { cert: string; key: string; ca?: string; verify?: boolean };
  /** JetStream with a store dir in the server's temp dir (default true). */
  jetstream?: boolean;
  /** Cluster membership (set by startNatsCluster; default: none). */
  cluster?: { name: string; port: number; routes: number[] };
  /** server_name (default: "downpour-<port>"). */
  serverName?: string;
  /** Client port (default: a free port chosen by the OS). */
  port?: number;
  /** How long to wait for the server to accept clients, in ms (default 10 000). */
  readyTimeoutMs?: number;
  /** Extra config text appended verbatim (default: none). */
  extraConfig?: string;
  /** A config file the server includes (default: none), e.g. writeJobAuth's configFile (accounts with one user per
   * job); relative to the working directory. Not together with `auth`. */
  include?: string;
}

/** A running server. */
export interface NatsServer {
  /** nats://127.0.0.1:<port> (tls:// when TLS is on). */
  readonly url: string;
  readonly port: number;
  /** The process id of nats-server. */
  readonly pid: number;
  /** The JetStream store dir (undefined without JetStream). */
  readonly storeDir?: string;
  /** The config file written for this server. */
  readonly configFile: string;
  /** What the server has written to stderr so far. */
  log(): string;
  /** SIGTERM, then SIGKILL after 3 s; resolves once the process has exited and its temp dir is removed. Idempotent. */
  stop(): Promise<void>;
  /** Sends a signal (default SIGKILL) without waiting; stop() still cleans up afterwards. */
  kill(signal?: NodeJS.Signals): void;
}

const STOP_GRACE_MS = 3_000;
const DEFAULT_READY_MS = 10_000;
const START_ATTEMPTS = 5;
/** Servers not yet exited, with their temp dirs (the exit hook kills them and removes the dirs). */
const running = new Map<ChildProcess, string>();
let exitHookInstalled = false;

function searchDirs(): string[] {
  return [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/bin", "/usr/bin", "/sbin"];
}

/** The nats-server binary: the first in `dirs` (default: PATH, then /usr/sbin, /usr/local/bin, /usr/bin, /sbin); throws saying how to install it. */
export function natsServerPath(dirs: readonly string[] = searchDirs()): string {
  for (const dir of dirs) {
    if (dir === "") continue;
    const candidate = join(dir, "nats-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new NatsServerMissingError("nats-server is not installed: apt-get install -y nats-server (Debian, Ubuntu), brew install nats-server, or a release from https://github.com/nats-io/nats-server/releases on PATH");
}

/** A port the OS considers free on 127.0.0.1 right now (bound to 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port from the OS"))));
    });
  });
}

/** Starts one nats-server (see NatsServerOptions); resolves once it has sent a client its INFO line. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = natsServerPath();
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      return await launch(binary, port, options);
    } catch (error) {
      lastError = error;
      // Another process took the port between our probe and the server's bind: try another one.
      if (!(error instanceof PortInUseError) || options.port !== undefined) throw error;
    }
  }
  throw lastError;
}

class PortInUseError extends Error {}

function q(value: string): string {
  return JSON.stringify(value);
}

function configText(port: number, options: NatsServerOptions, storeDir: string | undefined, dir: string): string {
  const lines = [`listen: "127.0.0.1:${port}"`, `server_name: ${q(options.serverName ?? `downpour-${port}`)}`];
  if (options.maxPayload !== undefined) lines.push(`max_payload: ${options.maxPayload}`);
  if (storeDir !== undefined) lines.push(`jetstream { store_dir: ${q(storeDir)} }`);
  const auth = options.auth;
  if (auth && "token" in auth) lines.push(`authorization { token: ${q(auth.token)} }`);
  else if (auth) lines.push(`authorization { user: ${q(auth.user)}, password: ${q(auth.password)} }`);
  const tls = options.tls;
  if (tls) {
    const parts = [`cert_file: ${q(tls.cert)}`, `key_file: ${q(tls.key)}`];
    if (tls.ca !== undefined) parts.push(`ca_file: ${q(tls.ca)}`);
    if (tls.verify) parts.push("verify: true");
    lines.push(`tls { ${parts.join(", ")} }`);
  }
  const cluster = options.cluster;
  if (cluster) {
    const routes = cluster.routes.map((p) => q(`nats-route://127.0.0.1:${p}`)).join(", ");
    lines.push(`cluster { name: ${q(cluster.name)}, listen: "127.0.0.1:${cluster.port}", routes: [${routes}] }`);
  }
  // nats-server 2.9 resolves an include against the including file's directory, even an absolute path.
  if (options.include !== undefined) lines.push(`include ${q(relative(dir, resolve(options.include)))}`);
  if (options.extraConfig) lines.push(options.extraConfig);
  return `${lines.join("\n")}\n`;
}

/** `include` names a readable file and comes without `auth` (two authorization setups would conflict). */
function checkInclude(options: NatsServerOptions): void {
  if (options.include === undefined) return;
  if (options.auth !== undefined) throw new InvalidArgumentError("startNatsServer: give auth or include (a config with accounts and users), not both");
  try {
    accessSync(options.include, constants.R_OK);
  } catch (cause) {
    throw new InvalidArgumentError(`startNatsServer: include ${options.include} cannot be read (${(cause as Error).message})`, { cause });
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const [child, dir] of running) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

async function launch(binary: string, port: number, options: NatsServerOptions): Promise<NatsServer> {
  checkInclude(options);
  const dir = mkdtempSync(join(tmpdir(), "downpour-nats-"));
  const storeDir = options.jetstream === false ? undefined : join(dir, "jetstream");
  const configFile = join(dir, "nats.conf");
  writeFileSync(configFile, configText(port, options, storeDir, dir), { mode: 0o600 });
  installExitHook();
  const child = spawn(binary, ["-c", configFile], { stdio: ["ignore", "ignore", "pipe"] });
  running.set(child, dir);
  let log = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    log += chunk;
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  let spawnError: Error | undefined;
  child.once("error", (error) => {
    spawnError = error;
  });
  void exited.then(() => running.delete(child));
  // A forgotten server must not keep the test process alive; the exit hook kills it.
  child.unref();
  (child.stderr as Socket | null)?.unref?.();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      child.ref();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const scheme = options.tls ? "tls" : "nats";
  try {
    await waitForInfo(port, options.readyTimeoutMs ?? DEFAULT_READY_MS, () => {
      if (spawnError) throw new Error(`nats-server could not start (${binary}): ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        if (/address already in use/i.test(log)) throw new PortInUseError(`port ${port} in use:\n${log}`);
        throw new Error(`nats-server exited (code ${child.exitCode}, signal ${child.signalCode}) before accepting clients:\n${log}`);
      }
    });
  } catch (error) {
    await stop();
    if (error instanceof PortInUseError) throw error;
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n--- nats-server log ---\n${log}`, { cause: error });
  }
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? -1,
    storeDir,
    configFile,
    log: () => log,
    stop,
    kill: (signal: NodeJS.Signals = "SIGKILL") => {
      child.kill(signal);
    },
  };
}

/** Resolves once a TCP client on `port` receives "INFO" (sent in plain text, TLS or not); polls every 25 ms. */
async function waitForInfo(port: number, timeoutMs: number, check: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    check();
    if (await probeInfo(port, Math.min(1_000, Math.max(50, deadline - Date.now())))) return;
    await sleep(25);
  }
  check();
  throw new Error(`nats-server on 127.0.0.1:${port} did not accept a client within ${timeoutMs} ms`);
}

function probeInfo(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let text = "";
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once("error", () => done(false));
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      if (text.startsWith("INFO")) done(true);
    });
    socket.connect(port, "127.0.0.1");
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

