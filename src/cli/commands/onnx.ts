// `downpour export --model m.dpnn --onnx m.onnx` and `downpour import --onnx m.onnx --model m.dpnn`: a model file to
// ONNX (standard operators, its input scaling as leading nodes, a dynamic batch) for onnxruntime and the tools that
// read ONNX, and an ONNX chain of dense layers back to a model file that eval, predict and train --resume take.
// Outputs are checked before any work and written through a temp file.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import { saveModel } from "../../api/persist.js";
import { writeFileAtomic } from "../../node/files.js";
import { decodeOnnx, type OnnxValueInfo } from "../../onnx/codec.js";
import { exportOnnx } from "../../onnx/export.js";
import { importOnnx } from "../../onnx/import.js";
import { formatBytes } from "../../util/bytes.js";
import { CliError } from "../errors.js";
import type { CliIO } from "../io.js";
import { loadTrainedModel } from "../model-file.js";
import { checkOutputs, namedFile } from "../outputs.js";

/** "features [batch, 784]". */
function valueText(v: OnnxValueInfo): string {
  const dims = v.type?.tensor_type?.shape?.dim ?? [];
  return `${v.name} [${dims.map((d) => d.dim_param ?? d.dim_value ?? "?").join(", ")}]`;
}

/** The flags of `downpour export`. */
export interface ExportFlags {
  model: string;
  onnx: string;
}

/** Writes the model file's model as ONNX; returns the bytes written. */
export async function runExport(flags: ExportFlags, io: CliIO): Promise<Uint8Array> {
  const modelPath = resolve(io.cwd, flags.model);
  const out = resolve(io.cwd, flags.onnx);
  await checkOutputs([namedFile("--onnx", "--onnx", flags.onnx, out)], [namedFile("--model", "--model", flags.model, modelPath)]);
  const { model, preprocess } = await loadTrainedModel(modelPath);
  try {
    model.inputScaling = preprocess.scaling; // into the graph, so that the ONNX model takes raw rows
    let bytes: Uint8Array;
    try {
      bytes = exportOnnx(model);
    } catch (error) {
      throw new CliError(`--model ${flags.model}: ${(error as Error).message}`, { cause: error });
    }
    await writeFileAtomic(out, bytes);
    const graph = decodeOnnx(bytes, flags.onnx).graph;
    io.stdout(`wrote ${flags.onnx}: ${model.kind}, input ${graph.input.map(valueText).join(", ")}, output ${graph.output.map(valueText).join(", ")}, ${graph.node.length} nodes, ${formatBytes(bytes.length)}\n`);
    return bytes;
  } finally {
    model.dispose();
  }
}

/** The flags of `downpour import`. */
export interface ImportFlags {
  onnx: string;
  model: string;
}

/** Reads an ONNX file and writes it as a model file; returns the model file's path. */
export async function runImport(flags: ImportFlags, io: CliIO): Promise<string> {
  const onnxPath = resolve(io.cwd, flags.onnx);
  const out = resolve(io.cwd, flags.model);
  await checkOutputs([namedFile("--model", "--model", flags.model, out)], [namedFile("--onnx", "--onnx", flags.onnx, onnxPath)]);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(onnxPath);
  } catch (error) {
    throw new CliError(`--onnx ${flags.onnx}: cannot read it: ${(error as Error).message}`, { cause: error });
  }
  const model = await importOnnx(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), { source: flags.onnx });
  try {
    await saveModel(model, out);
    const spec = model.network.spec;
    const shape = [spec.inputs, ...spec.layers.map((l) => `${l.units} ${l.activation}`)].join(" -> ");
    io.stdout(`wrote ${flags.model}: ${model.kind} ${shape}, cost ${spec.cost}${model.inputScaling ? `, input scaling ${model.inputScaling.kind}` : ""}\n`);
    return out;
  } finally {
    model.dispose();
  }
}

const EXPORT_HELP = `
The ONNX model takes raw rows (the model's input scaling is its first nodes), any batch size, as input "features";
its output is "probabilities" for sigmoid and softmax outputs, "reconstruction" for an auto-encoder, else
"predictions". Serve it with onnxruntime (Node, browsers, Python, C++, Java); see the README.

Examples:
  downpour export --model downpour-model.dpnn --onnx mnist.onnx
  downpour import --onnx mnist.onnx --model mnist.dpnn && downpour eval --model mnist.dpnn --data mnist`;

/** Adds `export` and `import` to the program. */
export function registerOnnx(program: Command, io: CliIO): void {
  program
    .command("export")
    .description("write a model file's model as ONNX (standard operators, for onnxruntime and other tools)")
    .requiredOption("--model <file.dpnn>", "the model file")
    .requiredOption("--onnx <file.onnx>", "the ONNX file to write")
    .addHelpText("after", EXPORT_HELP)
    .action(async (flags: ExportFlags) => {
      await runExport(flags, io);
    });
  program
    .command("import")
    .description("read an ONNX chain of dense layers and activations as a model file (to evaluate, predict, train further)")
    .requiredOption("--onnx <file.onnx>", "the ONNX file")
    .requiredOption("--model <file.dpnn>", "the model file to write")
    .addHelpText("after", EXPORT_HELP)
    .action(async (flags: ImportFlags) => {
      await runImport(flags, io);
    });
}
