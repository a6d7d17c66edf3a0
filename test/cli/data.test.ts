// `downpour data`: where the cache is and whether MNIST is found; downloading MNIST from a local server serving the
// shared MNIST (tests needing it fail, never skip, when it is absent).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { runDataMnist, runDataWhere } from "../../src/cli/commands/data.js";
import { MNIST_FILES } from "../../src/data/index.js";
import { sharedData, sharedDataDir } from "../support/paths.js";
import { serveFiles, startServer } from "../support/servers.js";
import { captureIO, tempDir } from "./helpers.js";

const dir = tempDir("cli-data");
const TIMEOUT = { timeout: 60_000 };

describe("downpour data", () => {
  test("where: the cache directory, and MNIST not found with how to get it", () => {
    const io = captureIO(dir, { DOWNPOUR_CACHE: join(dir, "cache") });
    const result = runDataWhere(io);
    assert.equal(result.cache, join(dir, "cache"));
    assert.equal(result.mnist, undefined);
    assert.match(io.out(), /^cache: .*cache {2}\(set \$DOWNPOUR_CACHE to move it\)\nmnist: not found \(get it with: downpour data mnist\)\n$/);
  });

  test("where: MNIST found in $DOWNPOUR_DATA/mnist", () => {
    const sharedMnist = sharedData("mnist");
    const io = captureIO(dir, { DOWNPOUR_CACHE: join(dir, "cache"), DOWNPOUR_DATA: sharedDataDir() });
    assert.equal(runDataWhere(io).mnist, sharedMnist);
    assert.match(io.out(), /mnist: found in /);
  });

  test("mnist: downloads and verifies into --cache, then finds the files present", TIMEOUT, async () => {
    const sharedMnist = sharedData("mnist");
    const server = await startServer(serveFiles((name) => (MNIST_FILES.some((f) => f.name === name) ? readFileSync(join(sharedMnist, name)) : undefined)));
    try {
      const io = captureIO(dir);
      const first = await runDataMnist({ cache: "cache", baseUrl: [server.baseUrl] }, io);
      assert.equal(first.dir, join(dir, "cache", "mnist"));
      assert.equal(first.downloaded.length, 4);
      assert.match(io.out(), /^MNIST is in .*cache\/mnist\n {2}train-images-idx3-ubyte\.gz {2}downloaded from http:\/\/127\.0\.0\.1/);
      assert.equal(io.err().split("\n").filter((l) => l.startsWith("downloading ")).length, 4);
      const again = await runDataMnist({ cache: "cache", baseUrl: [server.baseUrl] }, captureIO(dir));
      assert.equal(again.present.length, 4);
      assert.equal(server.requests.length, 4, "nothing fetched the second time");
    } finally {
      await server.close();
    }
  });
});
