// Models with a NaN or infinite parameter (or optimizer state) are never written and never loaded: such a model
// came from a diverged run and would predict NaN, so saving or loading one is an error naming the tensor.
import { ModelFileError } from "../model/file/errors.js";
import type { ModelFileTensor } from "../model/file/format.js";

/** The first tensor and index holding a non-finite value, if any. */
export function firstNonFinite(tensors: readonly Pick<ModelFileTensor, "name" | "data">[]): { name: string; index: number; value: number } | undefined {
  for (const { name, data } of tensors) {
    for (let i = 0; i < data.length; i++) {
      const value = data[i]!;
      if (value - value !== 0) return { name, index: i, value };
    }
  }
  return undefined;
}

/** Throws ModelFileError when a tensor holds NaN or ±Infinity: `source` is the file or "<bytes>"; `use` names the
 *  saving call ("saveModel") when the model is being written, and is absent when it is being read (the reader
 *  prefixes "model file <source>: " to the message). */
export function requireFiniteTensors(tensors: readonly Pick<ModelFileTensor, "name" | "data">[], source: string, use?: string): void {
  const bad = firstNonFinite(tensors);
  if (!bad) return;
  const where = `${bad.name}[${bad.index}] is ${bad.value}`;
  const retrain = "retrain it with a smaller learning rate";
  throw new ModelFileError(
    source,
    use
      ? `${use}: the model is not saved: ${where}; it diverged in training (${retrain})`
      : `${where}; it was saved from a training run that diverged, so it cannot predict (${retrain})`,
  );
}
