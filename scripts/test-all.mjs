// Runs the lint and the whole suite under the machine's Node, and, at the same time, the portable tier (everything
// but the scenario tests below) under Node 24, Bun and Deno; prints one total line. Two lanes run side by side on
// the machine's cores: lane 1 (lint, Node) streams its output; lane 2 (Node 24, Bun, Deno) prints each runner's
// output when it ends. Counts come from each runner's JUnit XML report (leaf tests only).
// Usage: node scripts/test-all.mjs [--dist <dir>] [--only lint,node,node24,bun,deno] [--all-engines] [--serial]
//   --all-engines: every engine runs every test (the scenario tier too); --serial: one runner at a time.
//   (the tests are compiled: npm run build)
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { NODE24, systemNode } from "./node-binaries.mjs";

const { values: flags } = parseArgs({
  options: { dist: { type: "string", default: "dist" }, only: { type: "string" }, "all-engines": { type: "boolean" }, serial: { type: "boolean" } },
});
const testRoot = join(flags.dist, "test");
if (!existsSync(testRoot)) {
  console.log(`no compiled tests in ${testRoot}: build first (npm install does, or npm run build)`);
  console.log("total: 0 passed, 1 failed");
  process.exit(1);
}
/** Folders (under the test root) whose tests run only under the machine's Node: the browser tests drive Chromium
 *  through playwright-core; the examples import the package by its name, as a user's script does. */
const nodeOnlyDirs = ["browser", "examples"];
/**
 * The scenario tier: tests that run whole jobs as processes (the CLI's cluster commands, killed shards and workers,
 * NATS restarts and fail-over, slow consumers, learning to thresholds on full MNIST) and take most of the suite's
 * time. They run under the machine's Node only; the code they drive runs under every engine in the portable tier
 * (the in-process cluster, training, model and data tests), so each engine is still proven on all of it.
 */
const scenarioFiles = [
  "cli/cluster", "cli/first-run", "cli/process", "cli/interrupt", "cli/synthetic", "cli/sparse-cluster",
  "cluster/failover", "cluster/nats-restart", "cluster/groups", "cluster/isolation", "cluster/slow-consumer", "cluster/worker-loss",
  "cluster/decoder-fuzz", "cluster/shard-recovery", "cluster/tls-cluster",
  "data/shared-data", "train/learning",
].map((name) => `${name}.test.js`);
/** A runner that has not finished after this long is stopped and counted as failed. */
const RUN_LIMIT_MS = 20 * 60_000;
/** Per-test limits: Bun's default (5 s) kills long tests; Node's default is none. Tests that need less say so themselves. */
const TEST_TIMEOUT_MS = 120_000;
/** Node applies --test-timeout to each test file as a whole too: the CLI's cluster file takes about 100 s alone
 *  and more beside the other lane, so Node's limit is per file (every long test carries its own timeout). */
const NODE_FILE_TIMEOUT_MS = 400_000;

const bin = (name) => (existsSync(`node_modules/.bin/${name}`) ? `node_modules/.bin/${name}` : name);
const node24 = NODE24;
const machineNode = systemNode() ?? process.execPath;

/** Every *.test.js under dir, sorted; `full`: with the node-only folders and the scenario tier, else the portable tier. */
function testFiles(dir, full) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const rel = relative(testRoot, path).split(/[/\\]/).join("/");
    if (entry.isDirectory()) {
      if (full || !nodeOnlyDirs.includes(rel.split("/")[0])) found.push(...testFiles(path, full));
    } else if (entry.name.endsWith(".test.js") && (full || flags["all-engines"] || !scenarioFiles.includes(rel))) {
      found.push(path);
    }
  }
  return found.sort();
}

const staleScenario = scenarioFiles.filter((f) => !existsSync(join(testRoot, f)));
if (staleScenario.length) {
  console.log(`scripts/test-all.mjs: the scenario tier names tests that do not exist under ${testRoot}: ${staleScenario.join(", ")}`);
  console.log("total: 0 passed, 1 failed");
  process.exit(1);
}

const reports = mkdtempSync(join(tmpdir(), "downpour-junit-"));
const junit = (name) => join(reports, `${name}.xml`);

function nodeRun(name, command, full) {
  return {
    name,
    command,
    args: [
      "--test",
      `--test-timeout=${NODE_FILE_TIMEOUT_MS}`,
      "--test-reporter=spec",
      "--test-reporter-destination=stdout",
      "--test-reporter=junit",
      `--test-reporter-destination=${junit(name)}`,
      ...testFiles(testRoot, full),
    ],
    report: junit(name),
  };
}

const runs = [
  { name: "lint", command: bin("biome"), args: ["lint"], lint: true, lane: 1 },
  { ...nodeRun("node", machineNode, true), lane: 1 },
  existsSync(node24) ? { ...nodeRun("node24", node24, false), lane: 2 } : { name: "node24", skip: `${node24} is absent (the "node" devDependency): not run` },
  {
    lane: 2,
    name: "bun",
    command: bin("bun"),
    args: ["test", `--timeout=${TEST_TIMEOUT_MS}`, "--reporter=junit", `--reporter-outfile=${junit("bun")}`, ...testFiles(testRoot, false).map((f) => `./${f}`)],
    report: junit("bun"),
  },
  {
    lane: 2,
    name: "deno",
    command: bin("deno"),
    args: ["test", "-A", "--no-check", `--junit-path=${junit("deno")}`, ...testFiles(testRoot, false)],
    report: junit("deno"),
    // Deno reports a node:test suite as a test case and each test in it as another, named "suite > test".
    stepsNamedByParent: true,
  },
].filter((run) => !flags.only || flags.only.split(",").includes(run.name));

/** The runtime name tests may check themselves against (test/runtime/core.test.ts). */
const runtimeOf = (name) => (name.startsWith("node") ? "node" : name);

/** Runs one runner; `buffered`: its output goes to a file, printed as one block when it ends (lane 2). */
function run({ name, command, args }, buffered) {
  const files = args.filter((a) => a.endsWith(".test.js")).length;
  const shown = args.filter((a) => !a.endsWith(".test.js")).join(" ");
  const header = `\n=== ${name}: ${command} ${shown}${files ? ` <${files} test files under ${testRoot}>` : ""}`;
  const log = join(reports, `${name}.log`);
  if (!buffered) console.log(header);
  const started = Date.now();
  return new Promise((resolve) => {
    // NO_COLOR only: Deno takes any FORCE_COLOR, even "0", as a request for colour.
    const env = { ...process.env, NO_COLOR: "1", DOWNPOUR_TEST_RUNTIME: runtimeOf(name) };
    delete env.FORCE_COLOR;
    const out = buffered ? openSync(log, "w") : "inherit";
    const child = spawn(command, args, { env, stdio: ["ignore", out, out] });
    const finish = (code, note = "") => {
      clearTimeout(timer);
      if (buffered) {
        closeSync(out);
        console.log(`${header}  (ran alongside lane 1; its output follows)\n${readFileSync(log, "utf8")}${note}`);
      } else if (note) {
        console.log(note);
      }
      console.log(`=== ${name}: exit ${code} after ${Math.round((Date.now() - started) / 1000)} s`);
      resolve(code);
    };
    let stopped = "";
    const timer = setTimeout(() => {
      stopped = `\n=== ${name}: still running after ${RUN_LIMIT_MS / 60_000} min: stopped`;
      child.kill("SIGKILL");
    }, RUN_LIMIT_MS);
    child.on("error", (error) => finish(1, `=== ${name}: cannot start ${command}: ${error.message}`));
    child.on("close", (code, signal) => finish(code ?? (signal ? 128 : 1), stopped));
  });
}

const decode = (text) =>
  text.replace(/&(lt|gt|quot|apos|amp|#(\d+)|#x([0-9a-f]+));/gi, (_, name, dec, hex) =>
    dec ? String.fromCodePoint(Number(dec)) : hex ? String.fromCodePoint(parseInt(hex, 16)) : { lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" }[name]);

/** Leaf test cases of a JUnit report: { name, failed, skipped }. */
function parseJunit(xml, stepsNamedByParent) {
  const cases = [];
  // Attribute values may hold a raw ">" (Node writes them so): skip over quoted values.
  for (const match of xml.matchAll(/<testcase\b((?:[^>"/]|"[^"]*"|\/(?!>))*)(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const name = decode(/\bname="([^"]*)"/.exec(match[1])?.[1] ?? "");
    const body = match[2] ?? "";
    cases.push({ name, failed: /<(failure|error)\b/.test(body), skipped: /<skipped\b/.test(body) });
  }
  if (!stepsNamedByParent) return cases;
  const parents = new Set();
  for (const { name } of cases) {
    for (let at = name.indexOf(" > "); at >= 0; at = name.indexOf(" > ", at + 3)) parents.add(name.slice(0, at));
  }
  return cases.filter((c) => !parents.has(c.name));
}

let passed = 0;
let failed = 0;
const lines = runs.map(() => []);

/** Runs one runner and records its counts in lines[index]. */
async function runAndCount(spec, index, buffered) {
  const out = lines[index];
  if (spec.skip) {
    console.log(`\n=== ${spec.name}: skipped: ${spec.skip}`);
    out.push(`${spec.name}: skipped (${spec.skip})`);
    return;
  }
  const code = await run(spec, buffered);
  if (spec.lint) {
    if (code === 0) passed++;
    else failed++;
    out.push(`${spec.name}: ${code === 0 ? "passed" : "FAILED"}, exit ${code}`);
    return;
  }
  const xml = existsSync(spec.report) ? readFileSync(spec.report, "utf8") : undefined;
  const cases = xml === undefined ? [] : parseJunit(xml, spec.stepsNamedByParent);
  const f = cases.filter((c) => c.failed).length;
  const s = cases.filter((c) => c.skipped && !c.failed).length;
  const p = cases.length - f - s;
  passed += p;
  failed += f;
  const problems = [];
  if (xml === undefined) problems.push("no JUnit report");
  else if (cases.length === 0) problems.push("no tests ran");
  if (code !== 0 && f === 0) problems.push(`exit ${code} with no failed test`);
  if (problems.length > 0) failed += 1; // a runner that crashed or ran nothing counts as one failure
  const skipped = s > 0 ? `, ${s} skipped` : "";
  const tier = spec.name === "lint" || spec.lane === 1 ? "" : flags["all-engines"] ? " (every test)" : " (portable tier)";
  out.push(`${spec.name}${tier}: ${p} passed, ${f} failed${skipped}, exit ${code}${problems.length ? ` (${problems.join("; ")}: counted as 1 failure)` : ""}`);
  for (const c of cases.filter((c) => c.failed)) out.push(`  failed: ${c.name}`);
}

/** The runners of one lane, one after another. */
async function lane(number, buffered) {
  for (const [index, spec] of runs.entries()) if ((spec.lane ?? 2) === number) await runAndCount(spec, index, buffered);
}

const started = Date.now();
if (flags.serial) {
  for (const [index, spec] of runs.entries()) await runAndCount(spec, index, false);
} else {
  await Promise.all([lane(1, false), lane(2, true)]);
}
console.log(`\n${lines.flat().join("\n")}`);
console.log(`wall time: ${Math.round((Date.now() - started) / 1000)} s${flags.serial ? " (serial)" : " (two lanes)"}`);
rmSync(reports, { recursive: true, force: true });
console.log(`\n${lines.join("\n")}`);
console.log(`total: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
