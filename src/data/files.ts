// Reading data files as streams: gzip is detected by its 1f 8b magic bytes, and failures become DataErrors naming the file.
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { createInterface } from "node:readline";
import { pipeline, type Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { DataError } from "./errors.js";

/** True when bytes start with the gzip magic 1f 8b. */
export function hasGzipMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** True when the file starts with the gzip magic, whatever its name. */
export async function isGzipFile(path: string): Promise<boolean> {
  const handle = await open(path, "r").catch((error: unknown) => {
    throw cannotRead(path, error);
  });
  try {
    const head = new Uint8Array(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return hasGzipMagic(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

/** The file's content as a byte stream, gunzipped when the file is gzip. */
export async function openDataStream(path: string): Promise<Readable> {
  const gzip = await isGzipFile(path);
  const source = createReadStream(path);
  if (!gzip) return source;
  const gunzip = createGunzip();
  pipeline(source, gunzip, () => {}); // errors reach the reader through gunzip
  return gunzip;
}

/** Each line of a text file (raw or gzip) with its 1-based number; CRLF and a missing final newline are fine. */
export async function* readLines(path: string): AsyncGenerator<{ line: number; text: string }> {
  const input = await openDataStream(path);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      if (text.includes("\0")) throw notText(path, line, text);
      yield { line, text: line === 1 ? text.replace(/^\uFEFF/, "") : text };
    }
  } catch (error) {
    throw asDataError(path, error);
  } finally {
    lines.close();
    input.destroy();
  }
}

/** A line holding a NUL byte: UTF-16 text (a NUL beside every ASCII character) or binary data, never CSV or libsvm. */
function notText(path: string, line: number, text: string): DataError {
  const utf16 = line === 1 && /^\uFFFD\uFFFD/.test(text) ? "UTF-16 text (it starts with a UTF-16 byte-order mark)" : "binary data or UTF-16 text";
  return new DataError(`${path} line ${line}: holds a NUL byte, so it is ${utf16}, not a text data file; save it as UTF-8 text`, { file: path, line });
}

/** A DataError naming the file for any failure while reading it (DataErrors pass through). */
export function asDataError(path: string, error: unknown): DataError {
  if (error instanceof DataError) return error;
  return new DataError(`${path}: ${readFailureDetail(error)}`, { file: path }, { cause: error });
}

/** What went wrong while reading, without the file name: a cut or broken gzip stream, or the system's reason. */
export function readFailureDetail(error: unknown): string {
  if (error instanceof DataError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code ?? "";
  if (code === "Z_BUF_ERROR") return "truncated: the gzip stream ends early";
  if (code.startsWith("Z_")) return `not a valid gzip stream (${message})`;
  return `cannot read the file (${message})`;
}

function cannotRead(path: string, error: unknown): DataError {
  return new DataError(`${path}: ${readFailureDetail(error)}`, { file: path }, { cause: error });
}
