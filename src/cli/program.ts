// The `downpour` program: its commands, and running it on an argument list to an exit code (0 ok, 1 error,
// 2 usage, 130 stopped by Ctrl-C), with errors printed as `downpour: <message>` (stack traces only with DOWNPOUR_DEBUG=1).
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerCheckNeuron } from "./commands/check-neuron.js";
import { registerCluster } from "./commands/cluster.js";
import { registerData } from "./commands/data.js";
import { registerEval } from "./commands/eval.js";
import { registerPeer } from "./commands/peer.js";
import { registerPredict } from "./commands/predict.js";
import { registerOnnx } from "./commands/onnx.js";
import { registerPs } from "./commands/ps.js";
import { registerSparse } from "./commands/sparse.js";
import { registerTrain } from "./commands/train.js";
import { describeError, EXIT_ERROR, EXIT_USAGE, InterruptedError } from "./errors.js";
import { EXIT_INTERRUPTED, type CliIO } from "./io.js";

/** The package version (this file is dist/src/cli/program.js). */
function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** The program with every command; output and exits go through io and exceptions (exitOverride). */
export function buildProgram(io: CliIO): Command {
  const program = new Command("downpour")
    .description("train layered neural networks on WebAssembly SIMD kernels in worker threads")
    .version(version())
    .exitOverride()
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      outputError: (text, write) => write(`downpour: ${text.replace(/^error: /, "")}`),
    })
    .showHelpAfterError("(add --help for usage)");
  registerTrain(program, io);
  registerEval(program, io);
  registerPredict(program, io);
  registerData(program, io);
  registerCluster(program, io);
  registerPeer(program, io);
  registerPs(program, io);
  registerSparse(program, io);
  registerCheckNeuron(program, io);
  registerOnnx(program, io);
  return program;
}

/** Runs the program on `argv` (without node and the script); resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  try {
    await buildProgram(io).parseAsync([...argv], { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
    io.stderr(describeError(error, io.env.DOWNPOUR_DEBUG === "1"));
    return error instanceof InterruptedError ? EXIT_INTERRUPTED : EXIT_ERROR;
  }
}
