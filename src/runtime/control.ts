// Layout of the shared control block through which the pool hands kernel calls to worker threads with atomics.

/** Bytes of one worker's slot in the control SharedArrayBuffer. */
export const SLOT_BYTES = 512;
/** Int32 indices within a slot. */
export const REQUEST = 0; // sequence number of the latest posted call
export const DONE = 1; // sequence number of the latest finished call (-1: the worker died)
export const KERNEL = 2; // index into kernelNames(module), or QUIT
export const ARG_COUNT = 3;
export const STATUS = 4; // 0 ok, 1 the kernel threw
export const MESSAGE_LENGTH = 5;
export const QUIT = -1;
/** Float64 arguments start at this byte of a slot. */
export const ARGS_BYTE = 32;
export const MAX_ARGS = 24;
/** UTF-8 error message bytes start here and run to the end of the slot. */
export const MESSAGE_BYTE = ARGS_BYTE + 8 * MAX_ARGS;

/** Typed views on one worker's slot. */
export interface SlotViews {
  i32: Int32Array;
  args: Float64Array;
  message: Uint8Array;
}

export function slotViews(control: SharedArrayBuffer, slot: number): SlotViews {
  const base = slot * SLOT_BYTES;
  return {
    i32: new Int32Array(control, base, ARGS_BYTE / 4),
    args: new Float64Array(control, base + ARGS_BYTE, MAX_ARGS),
    message: new Uint8Array(control, base + MESSAGE_BYTE, SLOT_BYTES - MESSAGE_BYTE),
  };
}

/** The core's function exports in a fixed order, so the main thread and workers agree on kernel indices. */
export function kernelNames(module: WebAssembly.Module): string[] {
  return WebAssembly.Module.exports(module)
    .filter((entry) => entry.kind === "function")
    .map((entry) => entry.name)
    .sort();
}

import type { CoreTransfer } from "./worker-core.js";

/** Message the main thread posts once to start a worker. */
export interface WorkerInit extends CoreTransfer {
  type: "init";
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  slot: number;
}
