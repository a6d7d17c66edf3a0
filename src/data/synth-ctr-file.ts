// Node-only: writes the synthetic click-log rows of src/data/synth-ctr.ts as a libsvm file (1-based indices, as
// src/data/libsvm.ts reads), streamed chunk by chunk into a temp file renamed into place, with a JSON sidecar
// FILE.teacher.json that says how the rows were made and what the teacher scores on them.
import { basename } from "node:path";
import { AtomicFile, type AtomicWriteOptions } from "../node/files.js";
import { SynthCtrLibsvmEncoder, type SynthCtr, type SynthCtrSettings, SynthCtrStats, type SynthCtrSummary } from "./synth-ctr.js";

/** Which rows to write and how; defaults in SYNTH_CTR_FILE_DEFAULTS. */
export interface SynthCtrFileOptions extends AtomicWriteOptions {
  /** How many rows. */
  readonly rows: number;
  /** The first row's index (a held-out file takes the rows after the training file's); default 0. */
  readonly start?: number;
  /** Rows generated and written at a time (the memory held is about one chunk); default 8192. */
  readonly chunkRows?: number;
  /** Called after each chunk is written with the rows written so far. */
  readonly onProgress?: (rowsWritten: number) => void;
}

export const SYNTH_CTR_FILE_DEFAULTS = { start: 0, chunkRows: 8192 } as const;

/** The sidecar's contents: the generator's settings, the rows written, and the figures of SynthCtrSummary. */
export interface SynthCtrTeacherFile extends SynthCtrSettings, SynthCtrSummary {
  readonly format: "downpour-synth-ctr";
  readonly version: 1;
  /** The data file's name (beside the sidecar). */
  readonly file: string;
  /** The first row's index. */
  readonly start: number;
  /** The click rate the bias was calibrated to (clickRate is the measured one). */
  readonly clickRateTarget: number;
  /** libsvm indices are feature id + indexBase. */
  readonly indexBase: 1;
  /** The data file's size. */
  readonly bytes: number;
}

/** FILE.teacher.json: where the sidecar of a data file goes. */
export function teacherPathFor(path: string): string {
  return `${path}.teacher.json`;
}

/**
 * Writes rows [start, start + rows) of `generator` to `path` as libsvm and the sidecar to teacherPathFor(path), each
 * through a temp file: both temps are complete before either is renamed, and on any failure both are removed (an
 * existing file keeps its contents). Resolves with the sidecar's contents.
 */
export async function writeSynthCtrLibsvm(path: string, generator: SynthCtr, options: SynthCtrFileOptions): Promise<SynthCtrTeacherFile> {
  const { start, chunkRows } = { ...SYNTH_CTR_FILE_DEFAULTS, ...options };
  const data = await AtomicFile.create(path, options);
  let sidecar: AtomicFile | undefined;
  try {
    const { stats, bytes } = await writeRows(data, generator, start, options.rows, chunkRows, options.onProgress);
    const { clickRate: clickRateTarget, ...settings } = generator.settings;
    const teacher: SynthCtrTeacherFile = {
      format: "downpour-synth-ctr",
      version: 1,
      file: basename(path),
      ...settings,
      start,
      clickRateTarget,
      ...stats.summary(),
      indexBase: 1,
      bytes,
    };
    sidecar = await AtomicFile.create(teacherPathFor(path), options);
    await sidecar.write(`${JSON.stringify(teacher, null, 2)}\n`);
    await data.commit();
    await sidecar.commit();
    return teacher;
  } catch (error) {
    await data.abort();
    await sidecar?.abort();
    throw error;
  }
}

/** Generates, encodes and writes the rows chunk by chunk; the bytes written and the running figures. */
async function writeRows(
  file: AtomicFile,
  generator: SynthCtr,
  start: number,
  rows: number,
  chunkRows: number,
  onProgress: ((rowsWritten: number) => void) | undefined,
): Promise<{ stats: SynthCtrStats; bytes: number }> {
  const stats = new SynthCtrStats(generator.settings.noise);
  const encoder = new SynthCtrLibsvmEncoder();
  let bytes = 0;
  let written = 0;
  for (const chunk of generator.chunks(start, rows, chunkRows)) {
    stats.add(chunk);
    const encoded = encoder.encode(chunk);
    await file.write(encoded);
    bytes += encoded.length;
    written += chunk.rows;
    onProgress?.(written);
  }
  return { stats, bytes };
}
