// Downloading a gzip file from a list of base URLs: verified on its uncompressed content, then written atomically.
import { join } from "node:path";
import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";
import { contentProblem, type ContentSpec } from "./checksum.js";
import { DownpourError } from "../errors.js";
import { writeFileAtomic } from "../node/files.js";
import { DataError, DownloadError, type DownloadAttempt } from "./errors.js";
import { hasGzipMagic } from "./files.js";

const gunzipAsync = promisify(gunzip);
const gzipAsync = promisify(gzip);

/** Bytes received so far for one file from one URL; totalBytes when the server sent a Content-Length. */
export interface DownloadProgress {
  readonly file: string;
  readonly url: string;
  readonly receivedBytes: number;
  readonly totalBytes?: number;
}

/** Where to fetch from, with which fetch, and how long a silent connection may last. */
export interface DownloadSource {
  /** Tried in order until one delivers verified content. */
  readonly baseUrls: readonly string[];
  readonly fetch?: typeof fetch;
  readonly onProgress?: (progress: DownloadProgress) => void;
  /** Abort a request when no byte arrives for this long; default 30000 ms. */
  readonly idleTimeoutMs?: number;
}

/** Fetches spec.name from the first base URL that delivers matching content and writes it as <dir>/<name>; returns that URL. */
export async function downloadVerified(spec: ContentSpec, dir: string, source: DownloadSource): Promise<string> {
  const attempts: DownloadAttempt[] = [];
  const file = join(dir, spec.name);
  for (const base of source.baseUrls) {
    const url = fileUrl(base, spec.name);
    let gz: Uint8Array;
    try {
      gz = await fetchVerified(url, spec, source);
    } catch (error) {
      attempts.push({ url, problem: describeFailure(error) });
      continue;
    }
    await writeFileAtomic(file, gz, { fsync: true }).catch((error: Error) => {
      throw new DataError(`${file}: cannot write the download (${error.message})`, { file }, { cause: error });
    });
    return url;
  }
  const list = attempts.map((a) => `\n  ${a.url}: ${a.problem}`).join("");
  throw new DownloadError(`cannot download ${spec.name}: no URL delivered it intact${list || " (no base URLs given)"}`, attempts, { file });
}

/** base + name, or the base as given when it is not a URL (the fetch then fails and says so). */
function fileUrl(base: string, name: string): string {
  const withSlash = base.endsWith("/") ? base : `${base}/`;
  return URL.canParse(withSlash) ? new URL(name, withSlash).href : withSlash + name;
}

/** The gzip bytes from url once their uncompressed content matches spec (raw content is gzipped here). */
async function fetchVerified(url: string, spec: ContentSpec, source: DownloadSource): Promise<Uint8Array> {
  const body = await fetchBytes(url, spec.name, source);
  const gzipped = hasGzipMagic(body);
  if (!gzipped && body.length !== spec.bytes) fail(`not a gzip file: the response starts with ${preview(body)}`);
  const content = gzipped ? await gunzipAsync(body).catch((e: Error) => fail(`not a valid gzip file (${e.message})`)) : body;
  const problem = contentProblem(content, spec);
  if (problem) fail(problem);
  return gzipped ? body : gzipAsync(content);
}

/** The whole response body; throws on an HTTP error status or when the connection stays silent too long. */
async function fetchBytes(url: string, file: string, source: DownloadSource): Promise<Uint8Array> {
  const idleMs = source.idleTimeoutMs ?? 30_000;
  const controller = new AbortController();
  let timer = setIdleTimer(controller, idleMs);
  try {
    const response = await (source.fetch ?? fetch)(url, { signal: controller.signal, redirect: "follow" });
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      fail(`HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`);
    }
    const length = Number(response.headers.get("content-length") ?? NaN);
    const totalBytes = Number.isFinite(length) ? length : undefined;
    const pieces: Uint8Array[] = [];
    let receivedBytes = 0;
    const reader = response.body?.getReader();
    for (let next = await reader?.read(); next && !next.done; next = await reader!.read()) {
      clearTimeout(timer);
      timer = setIdleTimer(controller, idleMs);
      pieces.push(next.value);
      receivedBytes += next.value.length;
      source.onProgress?.({ file, url, receivedBytes, ...(totalBytes !== undefined ? { totalBytes } : {}) });
    }
    return Buffer.concat(pieces, receivedBytes);
  } catch (error) {
    if (controller.signal.aborted) fail(`no data for ${idleMs} ms (timed out)`);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function preview(bytes: Uint8Array): string {
  return JSON.stringify(Buffer.from(bytes.subarray(0, 40)).toString("latin1"));
}

function setIdleTimer(controller: AbortController, ms: number): ReturnType<typeof setTimeout> {
  const timer = setTimeout(() => controller.abort(), ms);
  timer.unref?.();
  return timer;
}

/** A failure of one attempt, described for the list in DownloadError. */
class AttemptFailure extends DownpourError {}

function fail(problem: string): never {
  throw new AttemptFailure(problem);
}

function describeFailure(error: unknown): string {
  if (error instanceof AttemptFailure) return error.message;
  const { message, cause } = error as Error & { cause?: { code?: string; message?: string } };
  const reason = cause?.code ?? cause?.message;
  return reason ? `${message} (${reason})` : message;
}
