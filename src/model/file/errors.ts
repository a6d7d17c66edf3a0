// The error thrown for a model file that cannot be written, read or decoded; it names the file involved.
import { DownpourError } from "../../errors.js";

/** A model file (or model contents) that is malformed, corrupted or could not be written or read. */
export class ModelFileError extends DownpourError {
  constructor(
    /** The file path, or "<bytes>" when decoding/encoding an in-memory buffer. */
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
