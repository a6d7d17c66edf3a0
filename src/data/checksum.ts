// Checking content against a published size and sha256, on bytes in memory or on a (raw or gzip) file by streaming.
import { createHash } from "node:crypto";
import { openDataStream, readFailureDetail } from "./files.js";

/** A file known by the size and sha256 of its uncompressed content. */
export interface ContentSpec {
  readonly name: string;
  readonly bytes: number;
  readonly sha256: string;
}

/** What is wrong with bytes that should match spec, or undefined when they match. */
export function contentProblem(content: Uint8Array, spec: ContentSpec): string | undefined {
  const sha256 = createHash("sha256").update(content).digest("hex");
  return describeMismatch(content.length, sha256, spec);
}

/** What is wrong with the file's uncompressed content (or the file itself), or undefined when it matches spec. */
export async function fileProblem(path: string, spec: ContentSpec): Promise<string | undefined> {
  try {
    const hash = createHash("sha256");
    let size = 0;
    for await (const piece of await openDataStream(path)) {
      hash.update(piece as Uint8Array);
      size += (piece as Uint8Array).length;
    }
    return describeMismatch(size, hash.digest("hex"), spec);
  } catch (error) {
    return isMissingFile(error) ? "missing" : readFailureDetail(error);
  }
}

function describeMismatch(size: number, sha256: string, spec: ContentSpec): string | undefined {
  if (size !== spec.bytes) return `checksum mismatch: the uncompressed content has ${size} bytes, expected ${spec.bytes}`;
  if (sha256 !== spec.sha256) return `checksum mismatch: sha256 of the uncompressed content is ${sha256}, expected ${spec.sha256}`;
  return undefined;
}

function isMissingFile(error: unknown): boolean {
  const { code, cause } = error as { code?: string; cause?: { code?: string } };
  return code === "ENOENT" || cause?.code === "ENOENT";
}
