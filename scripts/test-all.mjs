// Runs the lint, then the whole suite under Node (this one and Node 24), Bun and Deno, and prints one total line.
// Counts come from each runner's JUnit XML report (leaf tests only); each runner's own output is streamed as it runs.
// Usage: node scripts/test-all.mjs [--dist <dir>] [--only lint,node,node24,bun,deno]   (the tests are compiled: npm run build)
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { NODE24, systemNode } from "./node-binaries.mjs";

const { values: flags } = parseArgs({ options: { dist: { type: "string", default: "dist" }, only: { type: "string" } } });
const testRoot = join(flags.dist, "test");
if (!existsSync(testRoot)) {
  console.log(`no compiled tests in ${testRoot}: build first (npm install does, or npm run build)`);
  console.log("total: 0 passed, 1 failed");
  process.exit(1);
}
/** Folders (under the test root) whose tests run only under Node: the browser tests drive Chromium through
 *  playwright-core; the examples import the package by its name, as a user's script does. */
const nodeOnlyDirs = ["browser", "examples"];
/** A runner that has not finished after this long is stopped and counted as failed. */
const RUN_LIMIT_MS = 20 * 60_000;
/** Per-test limits: Bun's default (5 s) kills long tests; Node's default is none. Tests that need less say so themselves. */
const TEST_TIMEOUT_MS = 120_000;

const bin = (name) => (existsSync(`node_modules/.bin/${name}`) ? `node_modules/.bin/${name}` : name);
const node24 = NODE24;
const machineNode = systemNode() ?? process.execPath;

/** Every *.test.js under dir, sorted, skipping the node-only folders unless withNodeOnly. */
function testFiles(dir, withNodeOnly) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const top = relative(testRoot, path).split(/[/\\]/)[0];
      if (withNodeOnly || !nodeOnlyDirs.includes(top)) found.push(...testFiles(path, withNodeOnly));
    } else if (entry.name.endsWith(".test.js")) {
      found.push(path);
    }
  }
  return found.sort();
}

const reports = mkdtempSync(join(tmpdir(), "downpour-junit-"));
const junit = (name) => join(reports, `${name}.xml`);

function nodeRun(name, command) {
  return {
    name,
    command,
    args: [
      "--test",
      `--test-timeout=${TEST_TIMEOUT_MS}`,
      "--test-reporter=spec",
      "--test-reporter-destination=stdout",
      "--test-reporter=junit",
      `--test-reporter-destination=${junit(name)}`,
      ...testFiles(testRoot, true),
    ],
    report: junit(name),
  };
}

const runs = [
  { name: "lint", command: bin("biome"), args: ["lint"], lint: true },
  nodeRun("node", machineNode),
  existsSync(node24) ? nodeRun("node24", node24) : { name: "node24", skip: `${node24} is absent (the "node" devDependency): not run` },
  {
    name: "bun",
    command: bin("bun"),
    args: ["test", `--timeout=${TEST_TIMEOUT_MS}`, "--reporter=junit", `--reporter-outfile=${junit("bun")}`, ...testFiles(testRoot, false).map((f) => `./${f}`)],
    report: junit("bun"),
  },
  {
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

function run({ name, command, args }) {
  const files = args.filter((a) => a.endsWith(".test.js")).length;
  const shown = args.filter((a) => !a.endsWith(".test.js")).join(" ");
  console.log(`\n=== ${name}: ${command} ${shown}${files ? ` <${files} test files under ${testRoot}>` : ""}`);
  return new Promise((resolve) => {
    // NO_COLOR only: Deno takes any FORCE_COLOR, even "0", as a request for colour.
    const env = { ...process.env, NO_COLOR: "1", DOWNPOUR_TEST_RUNTIME: runtimeOf(name) };
    delete env.FORCE_COLOR;
    const child = spawn(command, args, { env, stdio: ["ignore", "inherit", "inherit"] });
    const timer = setTimeout(() => {
      console.log(`\n=== ${name}: still running after ${RUN_LIMIT_MS / 60_000} min: stopped`);
      child.kill("SIGKILL");
    }, RUN_LIMIT_MS);
    child.on("error", (error) => {
      clearTimeout(timer);
      console.log(`=== ${name}: cannot start ${command}: ${error.message}`);
      resolve(1);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal ? 128 : 1));
    });
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
const lines = [];
for (const spec of runs) {
  if (spec.skip) {
    console.log(`\n=== ${spec.name}: skipped: ${spec.skip}`);
    lines.push(`${spec.name}: skipped (${spec.skip})`);
    continue;
  }
  const code = await run(spec);
  if (spec.lint) {
    if (code === 0) passed++;
    else failed++;
    lines.push(`${spec.name}: ${code === 0 ? "passed" : "FAILED"}, exit ${code}`);
    continue;
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
  lines.push(`${spec.name}: ${p} passed, ${f} failed${skipped}, exit ${code}${problems.length ? ` (${problems.join("; ")}: counted as 1 failure)` : ""}`);
  for (const c of cases.filter((c) => c.failed)) lines.push(`  failed: ${c.name}`);
}
rmSync(reports, { recursive: true, force: true });
console.log(`\n${lines.join("\n")}`);
console.log(`total: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
