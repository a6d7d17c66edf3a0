// `downpour check-neuron <TYPE>`: the conformance checks of a neuron type (checkNeuron: gradients against central
// differences, finite outputs over a sweep to large magnitudes, the same weights on several thread counts) as a table
// or JSON. Exits 0 when every check passed, 1 when one failed or the type cannot be loaded (naming module and export).
import Table from "cli-table3";
import { type Command, InvalidArgumentError, Option } from "commander";
import { pathToFileURL } from "node:url";
import { ACTIVATIONS, type Activation } from "../../model/spec.js";
import { checkNeuron, type NeuronCheckReport } from "../../api/neuron-check.js";
import { parseNeuronSpecifier } from "../../model/neurons/registry.js";
import type { NeuronRef } from "../../model/neurons/types.js";
import { loadNamedNeuron } from "../build-model.js";
import { isNeuronText } from "../config.js";
import { CliError } from "../errors.js";
import type { CliIO } from "../io.js";
import { parseIntegerList } from "../parse.js";

/** The flags of check-neuron. */
export interface CheckNeuronFlags {
  /** A per-neuron type's squashing function (the layers' activation). Default CHECK_NEURON_DEFAULTS.activation. */
  activation?: Activation;
  /** Thread counts whose trained weights must agree. Default CHECK_NEURON_DEFAULTS.threads. */
  threads?: number[];
  /** Print the report as JSON. Default false: a table. */
  json?: boolean;
}

/** The defaults of check-neuron's flags (checkNeuron's own). */
export const CHECK_NEURON_DEFAULTS: Readonly<{ activation: Activation; threads: readonly number[] }> = { activation: "sigmoid", threads: [0, 1, 2] };

/** A type that failed one of its checks (after the report was printed): exit 1. */
export class NeuronCheckFailedError extends CliError {
  readonly report: NeuronCheckReport;

  constructor(report: NeuronCheckReport) {
    const failed = report.checks.filter((c) => c.status === "failed").map((c) => c.name);
    super(`neuron type ${report.type} failed the ${failed.join(" and ")} check${failed.length === 1 ? "" : "s"}`);
    this.report = report;
  }
}

/** The type to check: a built-in name, or MODULE#EXPORT as a reference whose module is absolute from `cwd`. */
export function neuronOfArgument(text: string, cwd: string): string | NeuronRef {
  if ((ACTIVATIONS as readonly string[]).includes(text)) return text;
  const base = pathToFileURL(cwd.endsWith("/") ? cwd : `${cwd}/`).href;
  return parseNeuronSpecifier(text, "check-neuron TYPE", base);
}

/**
 * Loads the type (NeuronTypeError naming the module and the export when it cannot be), runs its checks and prints
 * the report; resolves with it when every check passed, else rejects with NeuronCheckFailedError.
 */
export async function runCheckNeuron(text: string, flags: CheckNeuronFlags, io: CliIO): Promise<NeuronCheckReport> {
  const type = neuronOfArgument(text, io.cwd);
  if (typeof type !== "string") await loadNamedNeuron(type, `check-neuron ${type.export}`);
  const report = await checkNeuron(type, {
    activation: flags.activation ?? CHECK_NEURON_DEFAULTS.activation,
    threads: flags.threads ?? [...CHECK_NEURON_DEFAULTS.threads],
  });
  io.stdout(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${reportText(report)}\n`);
  if (!report.passed) throw new NeuronCheckFailedError(report);
  return report;
}

/** "neuron type …#Swish (scalar form)", a check | result | detail table, and the verdict. */
export function reportText(report: NeuronCheckReport): string {
  const table = new Table({ style: { head: [], border: [] }, head: ["check", "result", "detail"] });
  for (const check of report.checks) table.push([check.name, check.status, check.detail]);
  const failed = report.checks.filter((c) => c.status === "failed").length;
  const verdict = report.passed ? "passed" : `failed ${failed} of ${report.checks.length} checks`;
  return `neuron type ${report.type} (${report.form} form)\n${table.toString()}\n${verdict}`;
}

/** TYPE: a built-in name or MODULE#EXPORT (a usage error otherwise). */
function parseType(text: string): string {
  if (!isNeuronText(text)) throw new InvalidArgumentError(`expected MODULE#EXPORT (like ./neurons.js#Swish) or a built-in type (${ACTIVATIONS.join(", ")}).`);
  return text;
}

/** --threads: thread counts, each 0 (the main thread) or more. */
function parseThreadCounts(text: string): number[] {
  const counts = parseIntegerList(text);
  if (counts.some((n) => n < 0)) throw new InvalidArgumentError("expected thread counts of 0 or more separated by commas, like 0,1,2.");
  return counts;
}

/** Adds `check-neuron` to the program. */
export function registerCheckNeuron(program: Command, io: CliIO): void {
  program
    .command("check-neuron")
    .description("run the conformance checks on a neuron type: gradients against finite differences, finite outputs for large inputs, the same weights on 0, 1 and 2 threads")
    .argument("<type>", "MODULE#EXPORT (the module relative to the working directory, like ./neurons.js#Swish) or a built-in type", parseType)
    .addOption(new Option("--activation <fn>", `the layers' activation: a per-neuron type's squashing function (default: ${CHECK_NEURON_DEFAULTS.activation})`).choices(ACTIVATIONS))
    .addOption(new Option("--threads <list>", `thread counts whose trained weights must agree (default: ${CHECK_NEURON_DEFAULTS.threads.join(",")})`).argParser(parseThreadCounts))
    .option("--json", "print the report as JSON")
    .addHelpText("after", CHECK_NEURON_EXAMPLES)
    .action(async (type: string, flags: CheckNeuronFlags) => {
      await runCheckNeuron(type, flags, io);
    });
}

const CHECK_NEURON_EXAMPLES = `
Examples:
  downpour check-neuron ./neurons.js#Swish           a scalar, block or per-neuron type exported by a module
  downpour check-neuron ./neurons.js#StandardNeuron --activation tanh   a per-neuron type squashing with tanh
  downpour check-neuron relu --threads 0,2 --json    a built-in type, two thread counts, the report as JSON`;
