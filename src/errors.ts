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

/** The WASM core could not be read, validated or instantiated on this engine. */
export class CoreLoadError extends DownpourError {}

/** A worker thread failed to start or a kernel trapped inside one. */
export class WorkerError extends DownpourError {}

/** An argument outside what the call accepts (a key range, a count); the message names it and what was expected. */
export class InvalidArgumentError extends DownpourError {}

/** A call on an object in the wrong state (a closed trainer or pool). */
export class InvalidStateError extends DownpourError {}
