// Training worker entry: instantiates the shared core over the run's memory, then runs one share of each epoch
// the main thread commands through the control block, blocking in Atomics.wait wherever the engine must wait,
// until told to quit. Any error is reported to the main thread and marks the run failed.
import { instantiateInWorker, type CoreTransfer } from "../runtime/worker-core.js";
import { parentPort } from "../runtime/worker-port.js";
import { loadNeuronTypes } from "../model/neurons/registry.js";
import type { CoreExports } from "../runtime/exports.js";
import { Command, controlViews, Party, ringDoorbell, RunFailedSignal, signalFailure, Slot, waitAWhile, type ControlBuffers } from "./control.js";
import { newMailboxState, runEpoch } from "./engine.js";
import type { TrainPlan } from "./plan.js";
import { StepRunner } from "./steps.js";

/** The message that starts a training worker. */
export interface TrainWorkerInit extends CoreTransfer {
  type: "train-init";
  memory: WebAssembly.Memory;
  plan: TrainPlan;
  buffers: ControlBuffers;
  worker: number;
}

async function instantiate(init: TrainWorkerInit): Promise<CoreExports> {
  await loadNeuronTypes(init.plan.spec);
  return (await instantiateInWorker(init, init.memory)).exports;
}

function serve(init: TrainWorkerInit, core: CoreExports, report: (message: unknown) => void): void {
  const control = controlViews(init.buffers);
  const runner = new StepRunner(core, init.memory, init.plan, init.worker);
  const mailbox = newMailboxState();
  const { i32 } = control;
  let seen = 0;
  for (;;) {
    Atomics.wait(i32, Slot.CommandSeq, seen);
    const now = Atomics.load(i32, Slot.CommandSeq);
    if (now === seen) continue;
    seen = now;
    if (Atomics.load(i32, Slot.Command) === Command.Quit) return;
    try {
      const epoch = runEpoch(runner, control, init.worker, mailbox);
      for (let r = epoch.next(); !r.done; r = epoch.next()) {
        const from = performance.now();
        waitAWhile(i32, r.value.view, r.value.index, r.value.target, r.value.timeoutMs);
        control.waited[init.worker * Party.f64]! += performance.now() - from;
      }
    } catch (error) {
      if (!(error instanceof RunFailedSignal)) report({ type: "train-error", worker: init.worker, message: String((error as Error)?.stack ?? error) });
      signalFailure(i32);
    }
    Atomics.add(i32, Slot.WorkersDone, 1);
    ringDoorbell(i32);
  }
}

const port = await parentPort();
port.onMessage((message) => {
  const init = message as TrainWorkerInit;
  if (init?.type !== "train-init") return;
  instantiate(init)
    .then((core) => {
      port.postMessage({ type: "ready" });
      serve(init, core, (m) => port.postMessage(m));
    })
    .catch((error) => port.postMessage({ type: "failed", message: String(error?.stack ?? error) }));
});
port.postMessage({ type: "alive" });
