// Error classes shared by every part of downpour: each names what was wrong and keeps the underlying cause.

/** Base class of every error downpour throws on purpose. */
export class DownpourError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Matrix or vector shapes that do not fit together; the message names every shape involved. */
export class ShapeError extends DownpourError {}

/** A scalar argument (learning rate, alpha, ...) that is NaN or infinite. */
export class NonFiniteError extends DownpourError {}

/** The arena cannot hold an allocation within its maximum size. */
export class ArenaExhaustedError extends DownpourError {}

/** What a MemoryLimitError says, as fields. */
export interface MemoryLimitFields {
  /** Bytes the allocation (or the whole object, e.g. a network's parameters) needs. */
  neededBytes: number;
  /** The memory limit in bytes (Kernels.load's maxBytes, or a data reader's). */
  limitBytes: number;
  /** What needed the memory, in plain words: "the network 784-100000000-10 (78.5 million parameters)". */
  what: string;
}

/** Something needs more memory than the limit allows; the message says what, how much, and the limit, in plain words. */
export class MemoryLimitError extends ArenaExhaustedError {
  readonly neededBytes: number;
  readonly limitBytes: number;
  readonly what: string;

  constructor(message: string, fields: MemoryLimitFields, options?: { cause?: unknown }) {
    super(message, options);
    this.neededBytes = fields.neededBytes;
    this.limitBytes = fields.limitBytes;
    this.what = fields.what;
  }
}

/** The WASM core could not be read, validated or instantiated on this engine. */
export class CoreLoadError extends DownpourError {}

/** A worker thread failed to start or a kernel trapped inside one. */
export class WorkerError extends DownpourError {}

/** An argument outside what the call accepts (a key range, a count); the message names it and what was expected. */
export class InvalidArgumentError extends DownpourError {}

/** A call on an object in the wrong state (a closed trainer or pool, a released slab, a disposed network). */
export class InvalidStateError extends DownpourError {}
