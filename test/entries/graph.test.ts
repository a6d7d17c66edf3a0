// The entries' import graphs: `downpour` (dist/src/index.js) and the worker entries it starts load as plain ES
// modules with no node:* import, no bare specifier and no Node API in data/, and the source folders keep
// their layering runtime <- core <- model <- train <- api/node <- cluster, onnx <- cli without cycles.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

/** This test's compiled output folder (dist/ or dist-*), two levels above dist/test/entries/. */
const outDir = fileURLToPath(new URL("../../", import.meta.url));
const root = resolve(outDir, "..");

// Literal module specifiers: static import/export ... from, side-effect imports, import("..."), and worker entries
// written as new URL("./x.js", import.meta.url).
const SPECIFIERS = [
  /\b(?:import|export)\s[^'";]*?\bfrom\s*["']([^"']+)["']/g,
  /\bimport\s*["']([^"']+)["']/g,
  /\bimport\s*\(\s*(?:\/\*[^*]*\*\/\s*)*["']([^"']+)["']\s*\)/g,
  /new\s+URL\(\s*["']([^"']+\.js)["']\s*,\s*import\.meta\.url\s*\)/g,
];
// Node APIs a data/ file must not use in the runtime-free entry.
const NODE_API = /\b(?:Buffer\.|process\.|__dirname|__filename|require\(|getBuiltinModule)/;

function stripComments(code: string): string {
  return code.replace(/\/\*(?!\s*(?:webpackIgnore|@vite-ignore))[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

function specifiers(code: string): string[] {
  const text = stripComments(code);
  return SPECIFIERS.flatMap((pattern) => Array.from(text.matchAll(pattern), (m) => m[1]!));
}

interface Graph {
  files: string[];
  problems: string[];
}

/** Every module reachable from `entry` (compiled JS), with what a browser or a bundler would choke on. */
function walk(entry: string): Graph {
  const seen = new Set<string>();
  const problems: string[] = [];
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const code = readFileSync(file, "utf8");
    const name = relative(outDir, file);
    for (const spec of specifiers(code)) {
      if (spec.startsWith("node:")) problems.push(`${name} imports ${spec}`);
      else if (!spec.startsWith(".") && !spec.startsWith("/")) problems.push(`${name} imports the bare specifier ${spec}`);
      else {
        const target = resolve(dirname(file), spec);
        if (!existsSync(target)) problems.push(`${name} imports ${spec}, which does not exist`);
        else queue.push(target);
      }
    }
    if (name.split(sep).includes("data") && NODE_API.test(stripComments(code))) {
      problems.push(`${name} (in data/) uses a Node API: ${NODE_API.exec(stripComments(code))![0]}`);
    }
  }
  return { files: [...seen].map((f) => relative(outDir, f)).sort(), problems };
}

const TIMEOUT = { timeout: 60_000 };

const onlyNode = (globalThis as { Bun?: unknown; Deno?: unknown }).Bun ?? (globalThis as { Deno?: unknown }).Deno
  ? "reads the compiled tree; run once, under Node"
  : false;

describe("entry import graphs", { skip: onlyNode }, () => {
  test("downpour (src/index.js) and its workers import nothing from node:* and no bare specifier", TIMEOUT, () => {
    const graph = walk(join(outDir, "src/index.js"));
    assert.deepEqual(graph.problems, []);
    for (const file of ["src/runtime/worker.js", "src/runtime/adapters/web.js", "src/core/kernels.js", "src/api/models.js", "src/data/dataset.js"]) {
      assert.ok(graph.files.includes(file.split("/").join(sep)), `${file} should be in the main entry's graph`);
    }
    for (const file of graph.files) assert.ok(!/(csv|idx|libsvm|mnist|download|files|cache|checksum|persist|io)\.js$/.test(file), `${file} is node-only`);
  });

  test("downpour/core (src/core/index.js) is runtime-free too", TIMEOUT, () => {
    assert.deepEqual(walk(join(outDir, "src/core/index.js")).problems, []);
  });

  test("downpour/onnx (src/onnx/index.js) imports nothing from node:*; its one bare specifier is protobufjs", TIMEOUT, () => {
    const problems = walk(join(outDir, "src/onnx/index.js")).problems;
    assert.deepEqual(problems.filter((p) => !/imports the bare specifier protobufjs$/.test(p)), []);
    assert.ok(problems.length > 0, "the schema's protobufjs import is seen");
  });

  test("the walker sees what it must refuse", TIMEOUT, () => {
    const graph = walk(join(outDir, "src/node/index.js"));
    assert.ok(graph.problems.some((p) => p.includes("node:fs")), "the node entry reaches node:fs");
    assert.ok(graph.problems.some((p) => p.includes("in data/")), "node readers in data/ use Node APIs");
  });
});

// Layering of src/: which folders each folder may import (type imports included).
const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  util: [],
  runtime: ["errors"],
  core: ["errors", "runtime"],
  data: ["errors", "util"],
  model: ["errors", "util", "runtime", "core"],
  train: ["errors", "util", "runtime", "core", "model", "data"],
  api: ["errors", "util", "runtime", "core", "model", "data", "train"],
  index: ["errors", "util", "runtime", "core", "model", "data", "train", "api"],
  node: ["errors", "util", "runtime", "core", "model", "data", "train", "api", "index"],
  cluster: ["errors", "util", "runtime", "core", "model", "data", "train", "api", "index", "node"],
  onnx: ["errors", "util", "runtime", "core", "model", "data", "train", "api", "index"],
  cli: ["errors", "util", "runtime", "core", "model", "data", "train", "api", "index", "node", "cluster", "onnx"],
};
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

function folderOf(srcRelative: string): string {
  return srcRelative.split(sep)[0]!.replace(/\.(ts|js)$/, "");
}

/** Relative specifiers of a source file, resolved to .ts paths under src/. */
function sourceImports(file: string): string[] {
  return specifiers(readFileSync(file, "utf8"))
    .filter((spec) => spec.startsWith("."))
    .map((spec) => resolve(dirname(file), spec).replace(/\.js$/, ".ts"));
}

describe("source layering", { skip: onlyNode || (!existsSync(join(root, "src")) && "no src/ beside the build") }, () => {
  test("runtime <- core <- model <- train <- api, train imports nothing from api", TIMEOUT, () => {
    const src = join(root, "src");
    const problems: string[] = [];
    // A leaf (a file importing nothing else in src/, like errors.ts) cannot close a cycle: any folder may use it.
    const isLeaf = (file: string): boolean => existsSync(file) && sourceImports(file).length === 0;
    for (const file of sourceFiles(src)) {
      const name = relative(src, file);
      const from = folderOf(name);
      const allowed = ALLOWED[from];
      if (!allowed) continue;
      for (const target of sourceImports(file)) {
        const to = folderOf(relative(src, target));
        if (to !== from && !allowed.includes(to) && !isLeaf(target)) problems.push(`${name} imports ${relative(src, target)} (${from} -> ${to})`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
