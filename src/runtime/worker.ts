// Worker-thread entry: instantiates the shared core over the pool's memory, then runs the kernel calls the main
// thread posts into its control slot, sleeping in Atomics.wait between calls.
import {
  ARG_COUNT, DONE, KERNEL, kernelNames, MESSAGE_LENGTH, QUIT, REQUEST, slotViews, STATUS,
  type SlotViews, type WorkerInit,
} from "./control.js";
import { instantiateInWorker } from "./worker-core.js";
import { parentPort } from "./worker-port.js";

function writeError(views: SlotViews, error: unknown): void {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const bytes = new TextEncoder().encode(text).subarray(0, views.message.length);
  views.message.set(bytes);
  views.i32[MESSAGE_LENGTH] = bytes.length;
  views.i32[STATUS] = 1;
}

function serve(kernels: Array<(...args: number[]) => unknown>, views: SlotViews): void {
  const { i32, args } = views;
  let seen = 0;
  for (;;) {
    Atomics.wait(i32, REQUEST, seen);
    seen = Atomics.load(i32, REQUEST);
    const kernel = i32[KERNEL]!;
    if (kernel === QUIT) return;
    i32[STATUS] = 0;
    try {
      kernels[kernel]!(...Array.from(args.subarray(0, i32[ARG_COUNT])));
    } catch (error) {
      writeError(views, error);
    }
    Atomics.store(i32, DONE, seen);
    Atomics.notify(i32, DONE);
  }
}

async function start(port: Awaited<ReturnType<typeof parentPort>>, init: WorkerInit): Promise<void> {
  const { module, exports } = await instantiateInWorker(init, init.memory);
  const table = exports as unknown as Record<string, (...args: number[]) => unknown>;
  const kernels = kernelNames(module).map((name) => table[name]!);
  port.postMessage({ type: "ready" });
  serve(kernels, slotViews(init.control, init.slot));
  port.postMessage({ type: "closed" });
}

const port = await parentPort();
port.onMessage((message) => {
  const init = message as WorkerInit;
  if (init?.type !== "init") return;
  start(port, init).catch((error) => port.postMessage({ type: "failed", message: String(error?.stack ?? error) }));
});
port.postMessage({ type: "alive" });
