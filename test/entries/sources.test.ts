// Deno and Bun run the TypeScript sources directly (src/index.ts, .js specifiers resolving to .ts): the core's
// build folder is found from src/runtime/, workers start from src/, and a small model trains and predicts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(fileURLToPath(new URL("../../", import.meta.url)), "..");
const bin = (name: string): string => join(root, "node_modules/.bin", name);
const underNode = !(globalThis as { Bun?: unknown }).Bun && !(globalThis as { Deno?: unknown }).Deno;

// The script each runtime runs: the sources' main entry, a shared-memory core from build/, an MLP on blobs
// trained with `threads` workers, its predictions, and its bytes decoded back.
function script(threads: number): string {
  const entry = pathToFileURL(join(root, "src/index.ts")).href;
  return `
import * as dp from ${JSON.stringify(entry)};
const data = dp.syntheticClassification({ size: 256, features: 4, classes: 2, seed: 3 });
const model = await dp.MultiLayerPerceptron.create({ inputs: 4, hidden: [8], outputs: 2, seed: 1 });
const reports = await model.fit(data, { epochs: 20, batchSize: 32, learningRate: 0.2, threads: ${threads} });
const copy = await dp.decodeModel(dp.encodeModel(model));
const x = data.x.subarray(0, 8);
const same = model.predict(x, 2).every((v, i) => v === copy.predict(x, 2)[i]);
const kernels = await dp.defaultKernels();
console.log(JSON.stringify({
  shared: kernels.core.shared, variant: kernels.core.variant, buildDir: dp.buildDir.href,
  epochs: reports.length, loss: reports.at(-1).loss, accuracy: model.evaluate(data).accuracy, same,
}));
`;
}

const RUNTIMES: Record<string, (file: string) => string[]> = {
  deno: (file) => [bin("deno"), "run", "-A", "--no-check", "--unstable-sloppy-imports", file],
  bun: (file) => [bin("bun"), file],
};

describe("TypeScript sources run directly", { skip: !underNode && "spawns Deno and Bun; runs once, under Node" }, () => {
  for (const [name, command] of Object.entries(RUNTIMES)) {
    for (const threads of [0, 2]) {
      test(`${name} on src/index.ts trains with threads: ${threads}`, { skip: !existsSync(bin(name)) && `no ${bin(name)}`, timeout: 120_000 }, () => {
        const dir = mkdtempSync(join(tmpdir(), `downpour-${name}-`));
        try {
          const file = join(dir, "train.mjs");
          writeFileSync(file, script(threads));
          const [exe, ...args] = command(file);
          const run = spawnSync(exe!, args, { cwd: dir, encoding: "utf8", timeout: 110_000, env: { ...process.env, NO_COLOR: "1" } });
          assert.equal(run.status, 0, `${name} exited ${run.status}:\n${run.stdout}\n${run.stderr}`);
          const result = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
          assert.equal(result.buildDir, pathToFileURL(join(root, "build/")).href, "build/ found from src/runtime/");
          assert.equal(result.shared, true);
          assert.equal(result.epochs, 20);
          assert.ok(result.accuracy >= 0.9, `accuracy ${result.accuracy}`);
          assert.equal(result.same, true, "decoded model predicts identically");
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  }
});
