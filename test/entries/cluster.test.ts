// The `downpour/cluster` entry: the package maps it to the built src/cluster/index.js, and it exports the
// connection, the BSP engine, its errors and the gradient exchange, beside everything of `downpour/node`.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import * as cluster from "../../src/cluster/index.js";

test("downpour/cluster is mapped to its build and exports the cluster API with the node entry", () => {
  const root = fileURLToPath(new URL("../../../", import.meta.url));
  const pkg = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { exports: Record<string, { default: string }> };
  const target = pkg.exports["./cluster"]?.default;
  assert.equal(target, "./dist/src/cluster/index.js");
  assert.ok(existsSync(fileURLToPath(new URL("../../src/cluster/index.js", import.meta.url))), "the entry is built beside this test");
  for (const name of ["connectCluster", "BspPeer", "runBsp", "ClusterGradientExchange", "MemoryChannelGroup", "BspChannel", "shardRanges", "splitDataset", "PeerLostError", "BarrierTimeoutError"]) {
    assert.equal(typeof (cluster as Record<string, unknown>)[name], "function", `downpour/cluster exports ${name}`);
  }
  assert.equal(typeof cluster.loadModel, "function", "and everything of downpour/node");
  assert.equal(cluster.CLUSTER_EXCHANGE_DEFAULTS.combine, "allreduce");
});
