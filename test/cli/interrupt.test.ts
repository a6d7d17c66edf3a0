// Ctrl-C on the built `downpour` binary: SIGINT while training writes a checkpoint, says where and exits 130, and
// the checkpoint resumes; SIGINT while the model file is being written, or a second one while the checkpoint is,
// exits 130 at once and leaves no hidden temp file. Spawns the CLI with process.execPath: under Node and Bun (skipped
// under Deno, see SKIP).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { loadModel } from "../../src/api/persist.js";
import { cliMain, tempDir } from "./helpers.js";

/** Deno runs the CLI this way too (and exits 130 on Ctrl-C), but its node:child_process reports a child it sent
 *  SIGINT to as killed by the signal ({ code: null, signal: "SIGINT" }) whatever the child's exit code. */
const SKIP = "Deno" in globalThis && "Deno's child_process reports a signalled child's exit as the signal, not its exit code";
const TIMEOUT = 120_000;
/** Bounds every wait for the child. */
const WAIT_MS = 60_000;

/** A running `downpour` child: its stderr so far, and a promise of its exit. */
interface Child {
  readonly process: ChildProcess;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function downpour(dir: string, args: string[]): Child {
  const child = spawn(process.execPath, [cliMain(), ...args], {
    cwd: dir, env: { ...process.env, DOWNPOUR_DEBUG: "" }, stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { process: child, stderr: () => stderr, exited };
}

/** Resolves once `ready()` holds (checked every `everyMs`), rejects after WAIT_MS or when the child exits first. */
async function waitFor(child: Child, what: string, ready: () => boolean, everyMs = 20): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  let exited = false;
  void child.exited.then(() => {
    exited = true;
  });
  while (!ready()) {
    if (exited) throw new Error(`the child exited before ${what}; stderr:\n${child.stderr()}`);
    if (Date.now() > deadline) throw new Error(`no ${what} within ${WAIT_MS / 1000} s; stderr:\n${child.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** The child's exit, or an error after WAIT_MS. */
async function exitOf(child: Child): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the child did not exit within ${WAIT_MS / 1000} s; stderr:\n${child.stderr()}`)), WAIT_MS);
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const hidden = (dir: string) => readdirSync(dir).filter((name) => name.startsWith("."));

describe("Ctrl-C on the downpour binary", { skip: SKIP }, () => {
  test("SIGINT while training: a checkpoint is written, named on stderr, exit 130, and --resume goes on", { timeout: TIMEOUT }, async () => {
    const dir = tempDir("cli-sigint");
    const args = ["train", "--data", "digits", "--hidden", "512", "--epochs", "100000", "--threads", "2", "--quiet", "--save", "m.dpnn", "--no-curves"];
    const child = downpour(dir, args);
    try {
      await waitFor(child, "epoch line", () => /^epoch 1\/100000 /m.test(child.stderr()));
      child.process.kill("SIGINT");
      const { code, signal } = await exitOf(child);
      assert.deepEqual({ code, signal }, { code: 130, signal: null }, child.stderr());
    } finally {
      child.process.kill("SIGKILL");
    }
    const checkpoint = join(dir, "m.checkpoint.dpnn");
    assert.ok(child.stderr().includes(`downpour: interrupted: checkpoint saved to ${checkpoint}; resume with --resume ${checkpoint}`), child.stderr());
    const model = await loadModel(checkpoint);
    const epochs = model.state?.epochs ?? 0;
    model.dispose();
    assert.ok(epochs >= 1 && epochs < 100000, `the checkpoint holds ${epochs} epochs`);
    assert.equal(existsSync(join(dir, "m.dpnn")), false, "the interrupted run saves the checkpoint, not the model");
    assert.deepEqual(hidden(dir), [], "no temp file is left");

    const resumed = downpour(dir, ["train", "--resume", checkpoint, "--epochs", String(epochs + 1), "--quiet", "--save", "m.dpnn", "--no-curves"]);
    try {
      const { code } = await exitOf(resumed);
      assert.equal(code, 0, resumed.stderr());
    } finally {
      resumed.process.kill("SIGKILL");
    }
    assert.match(resumed.stderr(), new RegExp(`^resuming .*m\\.checkpoint\\.dpnn: ${epochs} of ${epochs + 1} epochs done; training epoch ${epochs + 1}$`, "m"));
    assert.match(resumed.stderr(), new RegExp(`^epoch ${epochs + 1}/${epochs + 1} `, "m"));
    assert.ok(existsSync(join(dir, "m.dpnn")));
  });

  test("SIGINT while the model file is written: exit 130 and no hidden temp or draft file stays", { timeout: TIMEOUT }, async () => {
    const dir = tempDir("cli-sigint-save");
    // A model of ~4 million parameters (a 33 MB file with its momentum): writing it takes long enough to be caught.
    const args = ["train", "--data", "digits", "--hidden", "2000,2000", "--max-iterations", "1", "--epochs", "1", "--threads", "0", "--quiet", "--save", "big.dpnn", "--no-curves"];
    const child = downpour(dir, args);
    try {
      await waitFor(child, "temp file of the model", () => hidden(dir).length > 0, 2);
      child.process.kill("SIGINT");
      const { code, signal } = await exitOf(child);
      assert.deepEqual({ code, signal }, { code: 130, signal: null }, child.stderr());
    } finally {
      child.process.kill("SIGKILL");
    }
    assert.deepEqual(hidden(dir), [], "no hidden file is left");
    assert.equal(existsSync(join(dir, "big.dpnn")), false, "no partial model file");
  });

  test("a second SIGINT while the checkpoint is written exits 130 at once, leaving no temp file", { timeout: TIMEOUT }, async () => {
    const dir = tempDir("cli-sigint-twice");
    // 40 rows through ~4 million parameters: quick epochs, and a checkpoint (33 MB) slow enough to be caught writing.
    const rows = Array.from({ length: 40 }, (_, i) => [...Array.from({ length: 64 }, (_, j) => ((i * 7 + j * 3) % 17) / 16), i % 2].join(","));
    writeFileSync(join(dir, "t.csv"), `${rows.join("\n")}\n`);
    const args = ["train", "--data", "t.csv", "--holdout", "0", "--hidden", "2000,2000", "--epochs", "100000", "--threads", "0", "--quiet", "--save", "t.dpnn", "--no-curves"];
    const child = downpour(dir, args);
    try {
      await waitFor(child, "epoch line", () => /^epoch 1\/100000 /m.test(child.stderr()));
      child.process.kill("SIGINT");
      await waitFor(child, "temp file of the checkpoint", () => hidden(dir).length > 0, 2);
      child.process.kill("SIGINT");
      const { code, signal } = await exitOf(child);
      assert.deepEqual({ code, signal }, { code: 130, signal: null }, child.stderr());
    } finally {
      child.process.kill("SIGKILL");
    }
    assert.match(child.stderr(), /stopping after this mini-batch to write a checkpoint \(Ctrl-C again quits at once\)/);
    assert.doesNotMatch(child.stderr(), /checkpoint saved/);
    assert.deepEqual(hidden(dir), [], "no hidden file is left");
    assert.deepEqual(readdirSync(dir).sort(), ["t.csv"], "neither a partial checkpoint nor a model");
  });
});
