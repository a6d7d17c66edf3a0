// Softmax over the one output of the data (--output-activation softmax on a one-output file, or a config spec
// whose output layer is one softmax unit) is refused naming the setting, before training.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runCli } from "../../src/cli/program.js";
import { captureIO, tempDir, writeTemp } from "./helpers.js";

const dir = tempDir("cli-softmax-one");
writeTemp(dir, "reg.csv", `a,b,y\n${Array.from({ length: 20 }, (_, i) => `${i % 7},${i % 5},${(i % 3) / 2}`).join("\n")}\n`);

test("--output-activation softmax on one output names the flag and suggests sigmoid", { timeout: 60_000 }, async () => {
  const io = captureIO(dir);
  const code = await runCli(["train", "--data", "reg.csv", "--output-activation", "softmax", "--epochs", "1", "--threads", "1", "--quiet", "--no-save", "--no-curves"], io);
  assert.equal(code, 1);
  assert.match(
    io.err(),
    /^downpour: --output-activation: layers\[1\]\.activation: softmax over 1 unit always outputs 1; use sigmoid for one output, or give the layer 2 or more units\n$/,
  );
});
