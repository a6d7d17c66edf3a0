// Benchmark launcher: runs dist/bench/NAME.js under the chosen Node binary (Node 24 from node_modules by default),
// so that `npm run bench:*`, which starts under whatever node npm found, measures a known engine.
// Usage: node bench/run.mjs gemm|train|bsp [--engine=node24|node20|system | --node-20] [--dist=DIR] [bench flags...]
// Bench flags pass through: --record (write bench/results/ instead of bench/.scratch/), --quick (short runs).
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { systemNode } from "../scripts/node-binaries.mjs";

const root = fileURLToPath(new URL("../", import.meta.url));
const BENCHES = ["gemm", "train", "bsp", "ps", "soak", "sparse", "onnx"];

function fail(message) {
  console.error(`bench/run.mjs: ${message}`);
  process.exit(2);
}

function versionOf(binary) {
  const out = spawnSync(binary, ["--version"], { encoding: "utf8" });
  if (out.status !== 0) fail(`${binary} --version failed: ${out.stderr || out.error?.message}`);
  return out.stdout.trim();
}

const args = process.argv.slice(2);
const name = args.shift();
if (!BENCHES.includes(name)) fail(`first argument must be one of ${BENCHES.join(", ")}, got ${JSON.stringify(name)}`);

let engine = process.env.DOWNPOUR_BENCH_ENGINE ?? "node24";
let dist = process.env.DOWNPOUR_BENCH_DIST ?? "dist";
const passThrough = [];
for (const arg of args) {
  if (arg === "--node-20") engine = "node20";
  else if (arg === "--node-24") engine = "node24";
  else if (arg.startsWith("--engine=")) engine = arg.slice("--engine=".length);
  else if (arg.startsWith("--dist=")) dist = arg.slice("--dist=".length);
  else passThrough.push(arg);
}

const unknown = passThrough.filter((a) => a !== "--record" && a !== "--quick");
if (unknown.length) fail(`unknown flag(s) ${unknown.join(" ")}; expected --engine=node24|node20|system, --node-20, --dist=DIR, --record, --quick`);
if (passThrough.includes("--record") && passThrough.includes("--quick")) fail("--quick runs are not recorded: drop --quick or --record");

let binary;
if (engine === "node24") {
  binary = join(root, "node_modules/node/bin/node");
  if (!existsSync(binary)) fail(`${binary} is missing (the "node" devDependency; run npm ci)`);
} else if (engine === "node20" || engine === "system") {
  binary = systemNode() ?? fail("no node on PATH outside node_modules");
} else {
  fail(`--engine must be node24, node20 or system, got ${JSON.stringify(engine)}`);
}
const version = versionOf(binary);
const wanted = { node24: "v24.", node20: "v20." }[engine];
if (wanted && !version.startsWith(wanted)) fail(`--engine=${engine}: ${binary} is ${version}`);

const script = resolve(root, dist, "bench", `${name}.js`);
if (!existsSync(script)) fail(`${script} is missing: build first (npm run build, or tsc --outDir ${dist})`);
console.log(`engine: ${binary} (${version}), --engine=${engine}; running ${script}`);

const child = spawn(binary, [script, ...passThrough], { stdio: "inherit", cwd: root });
// Forward interruptions so the benchmark can stop its own children (busy-loop process, peers) first.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
child.on("error", (error) => fail(`cannot start ${binary}: ${error.message}`));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
