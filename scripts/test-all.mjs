// Runs the whole suite under Node, Bun and Deno (the same compiled tests), and prints one total line.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

const bin = (name) => (existsSync(`node_modules/.bin/${name}`) ? `node_modules/.bin/${name}` : name);
const crossRuntimeDirs = ["dist/test/"];

const runs = [
  {
    name: "node",
    command: process.execPath,
    args: ["--test", "--test-reporter=spec", "dist/test/"],
    parse: (out) => [count(out, /ℹ pass (\d+)/), count(out, /ℹ fail (\d+)/)],
  },
  {
    name: "bun",
    command: bin("bun"),
    args: ["test", ...crossRuntimeDirs.map((d) => `./${d}`)],
    parse: (out) => [count(out, /^\s*(\d+) pass/m), count(out, /^\s*(\d+) fail/m)],
  },
  {
    name: "deno",
    command: bin("deno"),
    args: ["test", "-A", "--no-check", ...crossRuntimeDirs],
    // Deno counts top-level tests and, in brackets, their steps (the node:test subtests): count the steps.
    parse: (out) => [countSteps(out, /(\d+) passed(?: \((\d+) steps?\))?/), countSteps(out, /(\d+) failed(?: \((\d+) steps?\))?/)],
  },
];

function countSteps(text, pattern) {
  const match = pattern.exec(text);
  return match ? Number(match[2] ?? match[1]) : undefined;
}

function count(text, pattern) {
  const match = pattern.exec(text);
  return match ? Number(match[1]) : undefined;
}

function run({ name, command, args }) {
  console.log(`\n=== ${name}: ${command} ${args.join(" ")}`);
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" } });
    let output = "";
    for (const stream of [child.stdout, child.stderr]) {
      stream.on("data", (chunk) => {
        output += chunk;
        process.stdout.write(chunk);
      });
    }
    child.on("error", (error) => resolve({ code: 1, output: `${output}\n${error.message}` }));
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

let passed = 0;
let failed = 0;
const lines = [];
for (const spec of runs) {
  const { code, output } = await run(spec);
  const [p, f] = spec.parse(output);
  const ok = code === 0 && p !== undefined && p > 0;
  passed += p ?? 0;
  failed += f ?? 0;
  if (!ok && !(f > 0)) failed += 1; // a runner that crashed or ran nothing counts as a failure
  lines.push(`${spec.name}: ${p ?? "?"} passed, ${f ?? "?"} failed, exit ${code}`);
}
console.log(`\n${lines.join("\n")}`);
console.log(`total: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
