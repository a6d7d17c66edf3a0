// The built `downpour` binary end to end: exit codes (0 ok, 1 error, 2 usage), messages on stderr, --help, and a
// reader that closes the pipe early (`downpour --help | head`) ending it quietly.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { before, describe, test } from "node:test";
import { SETTINGS } from "../../src/cli/settings.js";
import { refusedBaseUrl } from "../support/servers.js";
import { cliMain, tempDir } from "./helpers.js";

const dir = tempDir("cli-process");
const TIMEOUT = { timeout: 60_000 };
/** The child's environment: an empty cache, no shared data, and MNIST mirrors on which nothing listens (never the network). */
let env: NodeJS.ProcessEnv = {};

function downpour(...args: string[]) {
  return spawnSync(process.execPath, [cliMain(), ...args], { cwd: dir, env, encoding: "utf8", timeout: 60_000 });
}

/** Runs the binary with stdout piped and the pipe's reading end destroyed at once; resolves with its exit and stderr. */
function withClosedStdout(...args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(process.execPath, [cliMain(), ...args], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.destroy();
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  return new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stderr })));
}

describe("downpour binary", () => {
  before(async () => {
    env = { ...process.env, DOWNPOUR_CACHE: dir, DOWNPOUR_DATA: "", DOWNPOUR_DEBUG: "", DOWNPOUR_MNIST_URLS: await refusedBaseUrl() };
  });

  test("train --data synthetic --epochs 1 --quiet --no-save --no-curves exits 0 and writes no file", TIMEOUT, () => {
    const run = downpour("train", "--data", "synthetic", "--epochs", "1", "--quiet", "--no-save", "--no-curves");
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /^epoch 1\/1 {2}loss /m);
    assert.match(run.stdout, /test accuracy/);
    assert.deepEqual(readdirSync(dir), []);
  });

  test("a flag value commander rejects is a usage error: exit 2, the flag named on stderr", TIMEOUT, () => {
    const run = downpour("train", "--epochs", "ten");
    assert.equal(run.status, 2);
    assert.match(run.stderr, /^downpour: option '--epochs <n>' argument 'ten' is invalid\. expected an integer\./);
    assert.equal(run.stdout, "");
  });

  test("a value the library rejects exits 1 with `downpour: <message>` and no stack trace", TIMEOUT, () => {
    const run = downpour("train", "--data", "synthetic", "--epochs", "0");
    assert.equal(run.status, 1);
    assert.equal(run.stderr, "downpour: --epochs must be a positive integer, got 0\n");
  });

  test("an unknown command or option is a usage error (2)", TIMEOUT, () => {
    assert.equal(downpour("trian").status, 2);
    assert.equal(downpour("train", "--epoch", "3").status, 2);
  });

  test("train --help lists every flag with its default, and no cluster flag; peer --help lists them all; exit 0", TIMEOUT, () => {
    for (const [command, defs] of [["train", SETTINGS.filter((s) => s.flag && !s.scope)], ["peer", SETTINGS.filter((s) => s.flag)]] as const) {
      const run = downpour(command, "--help");
      assert.equal(run.status, 0);
      for (const def of defs) {
        assert.ok(run.stdout.includes(def.flag!), `${command}: ${def.flag}`);
        if (def.off) assert.ok(run.stdout.includes(`--no-${def.flag!.slice(2).split(" ")[0]}`), `--no- of ${def.flag}`);
      }
      assert.equal((run.stdout.match(/\(default:\s/g) ?? []).length, defs.length, command);
    }
    assert.equal(downpour("train", "--help").stdout.includes("--nats"), false);
  });

  test("--help into a pipe closed early (like `| head`) exits 0 without an EPIPE stack trace", TIMEOUT, async () => {
    for (const args of [["--help"], ["train", "--help"]]) {
      const run = await withClosedStdout(...args);
      assert.equal(run.stderr, "", `${args.join(" ")}: nothing on stderr`);
      assert.equal(run.code, 0, `${args.join(" ")}: exit ${run.code} ${run.signal ?? ""}`);
    }
  });
});
