// `downpour data put FILE --nats URL` and `downpour data ls` against a real nats-server with JetStream, run
// in-process: the nats:<name> reference and size printed (or JSON), the same name again (--force sends it
// anyway), --config's connection keys, a missing file named, and a closed port failing fast with exit 1
// (in-process, and as a real process that must not hang on a leftover socket).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connect } from "@nats-io/transport-node";
import { fetchDataset } from "../../src/cluster/data-store.js";
import { runCli } from "../../src/cli/program.js";
import { freePort, type NatsServer, startNatsServer } from "../support/nats.js";
import { captureIO, cliMain, pimaCsv, tempDir, writeTemp } from "./helpers.js";

const TIMEOUT = { timeout: 60_000 };
const dir = tempDir("cli-data-put");

/** Runs the built binary; resolves with its exit code and output, or kills it after `limitMs` (killed true). */
function downpourProcess(args: string[], limitMs: number): Promise<{ code: number | null; killed: boolean; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [cliMain(), ...args], { cwd: dir, env: { ...process.env, DOWNPOUR_DEBUG: "" }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  let killed = false;
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, limitMs);
  return new Promise((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, killed, stderr, ms: Date.now() - started });
    }),
  );
}

describe("downpour data put and ls", () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    await server?.stop();
  });

  test("put prints the nats: reference and size; again the same name, already stored; ls lists it", TIMEOUT, async () => {
    writeTemp(dir, "pima.csv", pimaCsv());
    const size = readFileSync(join(dir, "pima.csv")).length;
    const io = captureIO(dir);
    assert.equal(await runCli(["data", "put", "pima.csv", "--nats", server.url], io), 0, io.err());
    const match = /^(nats:[0-9a-f]{16}-pima\.csv) {2}.*\((\d+) bytes\), stored in bucket downpour-data\n$/.exec(io.out());
    assert.ok(match, io.out());
    assert.equal(Number(match[2]), size);
    assert.match(io.err(), new RegExp(`--data ${match[1]}`));

    const again = captureIO(dir);
    assert.equal(await runCli(["data", "put", join(dir, "pima.csv"), "--nats", server.url], again), 0, again.err());
    assert.match(again.out(), new RegExp(`^${match[1]} .*already stored`));
    const forced = captureIO(dir);
    assert.equal(await runCli(["data", "put", "pima.csv", "--force", "--nats", server.url], forced), 0, forced.err());
    assert.match(forced.out(), new RegExp(`^${match[1]} .*, stored in`));

    const ls = captureIO(dir);
    assert.equal(await runCli(["data", "ls", "--nats", server.url], ls), 0, ls.err());
    assert.match(ls.out(), new RegExp(`^${match[1]} {2}`, "m"));

    const nc = await connect({ servers: server.url });
    try {
      const path = await fetchDataset(nc, match[1]!.slice("nats:".length), { cacheDir: join(dir, "cache") });
      assert.equal(readFileSync(path, "utf8"), pimaCsv());
    } finally {
      await nc.close();
    }
  });

  test("--json prints one object; --config gives the connection", TIMEOUT, async () => {
    writeTemp(dir, "small.csv", "1,2,0\n3,4,1\n");
    writeTemp(dir, "run.json", JSON.stringify({ nats: server.url, epochs: 3 }));
    const io = captureIO(dir);
    assert.equal(await runCli(["data", "put", "small.csv", "--config", "run.json", "--json"], io), 0, io.err());
    const result = JSON.parse(io.out()) as Record<string, unknown>;
    assert.equal(result.ref, `nats:${result.name as string}`);
    assert.match(result.name as string, /^[0-9a-f]{16}-small\.csv$/);
    assert.deepEqual([result.size, result.bucket, result.uploaded], [12, "downpour-data", true]);
    assert.match(result.sha256 as string, /^[0-9a-f]{64}$/);

    const ls = captureIO(dir);
    assert.equal(await runCli(["data", "ls", "--config", "run.json", "--json"], ls), 0, ls.err());
    const listed = JSON.parse(ls.out()) as { ref: string }[];
    assert.ok(listed.some((d) => d.ref === result.ref), ls.out());
  });

  test("a missing file is named, before any connection", TIMEOUT, async () => {
    const io = captureIO(dir);
    assert.equal(await runCli(["data", "put", "missing.csv", "--nats", "nats://127.0.0.1:1"], io), 1);
    assert.match(io.err(), /^downpour: data put missing\.csv: no such file\n$/);
    assert.equal(io.out(), "");
  });
});

describe("downpour data put without a server", () => {
  test("a closed port fails within seconds with exit 1, naming the server", TIMEOUT, async () => {
    writeTemp(dir, "x.csv", "1,0\n");
    const url = `nats://127.0.0.1:${await freePort()}`;
    const io = captureIO(dir);
    const started = Date.now();
    assert.equal(await runCli(["data", "put", "x.csv", "--nats", url], io), 1);
    assert.ok(Date.now() - started < 10_000, `failed after ${Date.now() - started} ms`);
    assert.match(io.err(), new RegExp(`^downpour: .*${url.replace(/[.]/g, "\\.")}`));
  });

  test("the real process exits 1 soon after the connection failed (no leftover socket keeps it alive)", TIMEOUT, async () => {
    writeTemp(dir, "x.csv", "1,0\n");
    const url = `nats://127.0.0.1:${await freePort()}`;
    const run = await downpourProcess(["data", "put", "x.csv", "--nats", url], 30_000);
    assert.equal(run.killed, false, `still running after 30 s: ${run.stderr}`);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, new RegExp(url.replace(/[.]/g, "\\.")));
  });
});
