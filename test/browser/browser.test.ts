// The runtime-free entry in a real browser (Debian chromium through playwright-core): plain ES modules with no
// import map, GEMM against the TypeScript reference, training on 2 workers on a cross-origin isolated page, model
// bytes round-tripped exactly; user neuron types imported by URL in the page and its workers; without COOP/COEP, training on the calling thread and a clear error for threads.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { basename, extname, join, normalize, resolve, sep } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const CHROMIUM = "/usr/bin/chromium";
const outDir = fileURLToPath(new URL("../../", import.meta.url)); // dist/ (or dist-*/) of this build
const root = resolve(outDir, ".."); // the package root: dist/, build/
const base = `/${basename(outDir)}/`; // where the compiled package is served, e.g. /dist/
const underNode = !(globalThis as { Bun?: unknown }).Bun && !(globalThis as { Deno?: unknown }).Deno;

function skipReason(): string | false {
  if (!underNode) return "drives chromium from Node only";
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === "true") return false; // in CI a missing browser is a failure (the launch fails)
  return `${CHROMIUM} is missing (apt-get install -y chromium); set CI=true to fail instead`;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".map": "application/json",
  ".wasm": "application/wasm",
};
const ISOLATION = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};
const PAGE = "<!doctype html><meta charset=utf-8><title>downpour</title><body>downpour browser test</body>";

/** Static files of the package root; /isolated.html is sent with COOP/COEP, /plain.html without. */
function startServer(): Promise<Server> {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
    if (path === "/isolated.html" || path === "/plain.html") {
      res.writeHead(200, { "Content-Type": TYPES[".html"]!, ...(path === "/isolated.html" ? ISOLATION : {}) });
      res.end(PAGE);
      return;
    }
    const file = normalize(join(root, path));
    const allowed = [join(root, "build") + sep, outDir];
    if (!allowed.some((dir) => file.startsWith(dir))) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream", ...ISOLATION });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((done, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => done(server));
  });
}

/** Rejects after `ms` with `what`, so a hung page fails the test instead of the whole run. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what}: no result after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Loose types for the page side: the code below runs in the browser (page.evaluate), not in Node.
type Page = import("playwright-core").Page;
type Browser = import("playwright-core").Browser;

describe("downpour in chromium", { skip: skipReason(), timeout: 240_000 }, () => {
  let server: Server;
  let browser: Browser;
  let origin: string;
  const logs: string[] = [];

  before(async () => {
    server = await startServer();
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      timeout: 60_000,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  });

  after(async () => {
    await browser?.close();
    await new Promise((done) => (server ? server.close(done) : done(undefined)));
  });

  async function open(name: "isolated" | "plain"): Promise<Page> {
    const page = await browser.newPage();
    page.setDefaultTimeout(60_000);
    page.on("console", (m) => logs.push(`${name} console.${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`${name} page error: ${e.message}`));
    await page.goto(`${origin}/${name}.html`, { timeout: 30_000 });
    return page;
  }

  const withLogs = (error: unknown): never => {
    throw new Error(`${(error as Error).message}\n--- page logs ---\n${logs.join("\n")}`, { cause: error });
  };

  test("isolated page: GEMM matches the reference, 2 workers train, model bytes round-trip exactly", { timeout: 180_000 }, async (t) => {
    const page = await open("isolated");
    try {
      const result = await within(150_000, "isolated page", page.evaluate(async (base: string) => {
        const dp = await import(`${base}src/index.js`);
        const ref = await import(`${base}src/core/reference/gemm.js`);
        const out: Record<string, unknown> = { isolated: crossOriginIsolated, sab: typeof SharedArrayBuffer };
        // GEMM on the calling thread against the TypeScript reference.
        const k = await dp.Kernels.load();
        const [m, n, kk] = [33, 17, 40];
        let s = 7;
        const rand = (): number => {
          s = (s * 1103515245 + 12345) >>> 0;
          return (s / 2 ** 32) * 2 - 1;
        };
        const a = Float32Array.from({ length: m * kk }, rand);
        const b = Float32Array.from({ length: kk * n }, rand);
        const c = k.arena.alloc(m * n);
        k.gemm(dp.matrix(c, m, n), dp.matrix(k.arena.alloc(m * kk).set(a), m, kk), dp.matrix(k.arena.alloc(kk * n).set(b), kk, n));
        const expected = new Float32Array(m * n);
        ref.gemmReference(expected, n, a, kk, b, n, m, n, kk, false, false, 1, 0);
        const got = c.toArray();
        out.variant = k.core.variant;
        out.gemmMaxError = Math.max(...Array.from(got, (v: number, i: number) => Math.abs(v - expected[i]!)));
        // The same product split across a pool of 2 workers over a shared-memory core.
        const sk = await dp.Kernels.load({ shared: true });
        const pool = await dp.WorkerPool.start(sk.core, { threads: 2 });
        const pc = sk.arena.alloc(m * n);
        await new dp.ParallelGemm(pool, sk.arena).run(dp.matrix(pc, m, n), dp.matrix(sk.arena.alloc(m * kk).set(a), m, kk), dp.matrix(sk.arena.alloc(kk * n).set(b), kk, n));
        await pool.close();
        out.poolMaxError = Math.max(...Array.from(pc.toArray(), (v: number, i: number) => Math.abs(v - expected[i]!)));
        // Training on 2 worker threads over the default (shared-memory) core.
        const data = dp.syntheticClassification({ size: 256, features: 4, classes: 2, seed: 3 });
        const model = await dp.MultiLayerPerceptron.create({ inputs: 4, hidden: [8], outputs: 2, seed: 1 });
        out.shared = model.network.kernels.core.shared;
        const reports = await model.fit(data, { epochs: 20, batchSize: 32, learningRate: 0.2, threads: 2 });
        out.epochs = reports.length;
        out.accuracy = model.evaluate(data).accuracy;
        // Model bytes: encode, decode, identical outputs.
        const bytes: Uint8Array = dp.encodeModel(model);
        const copy = await dp.decodeModel(bytes);
        const x = data.x.subarray(0, 16 * 4);
        const p1: Float32Array = model.predict(x, 16);
        const p2: Float32Array = copy.predict(x, 16);
        out.bytes = bytes.length;
        out.copyKind = copy.kind;
        out.samePredictions = p1.length === p2.length && p1.every((v, i) => Object.is(v, p2[i]));
        return out;
      }, base)).catch(withLogs);
      t.diagnostic(JSON.stringify(result));
      assert.equal(result.isolated, true, "served with COOP/COEP");
      assert.equal(result.sab, "function");
      assert.ok((result.gemmMaxError as number) < 1e-4, `GEMM max error ${result.gemmMaxError}`);
      assert.ok((result.poolMaxError as number) < 1e-4, `pool GEMM max error ${result.poolMaxError}`);
      assert.equal(result.shared, true, "the default core has shared memory on an isolated page");
      assert.equal(result.epochs, 20);
      assert.ok((result.accuracy as number) >= 0.9, `accuracy ${result.accuracy}`);
      assert.ok((result.bytes as number) > 0);
      assert.equal(result.copyKind, "MultiLayerPerceptron");
      assert.equal(result.samePredictions, true, "decoded model predicts exactly the same");
    } finally {
      await page.close();
    }
  });

  test("isolated page: user neuron types load by URL in the page and in 2 workers, train, and pass checkNeuron", { timeout: 180_000 }, async (t) => {
    const page = await open("isolated");
    try {
      const result = await within(150_000, "neuron types page", page.evaluate(async (base: string) => {
        const dp = await import(`${base}src/index.js`);
        const neurons = new URL(`${base}test/support/neurons.js`, location.href).href;
        const out: Record<string, unknown> = {};
        const data = dp.syntheticClassification({ size: 256, features: 4, classes: 2, seed: 3 });
        for (const type of ["Swish", "SigmoidBlock", "StandardNeuron"]) {
          const model = await dp.MultiLayerPerceptron.create({ inputs: 4, hidden: [8], outputs: 2, hiddenActivation: "sigmoid", hiddenNeuron: `${neurons}#${type}`, seed: 1 });
          await model.fit(data, { epochs: 20, batchSize: 32, learningRate: 0.2, threads: 2 });
          out[`accuracy ${type}`] = model.evaluate(data).accuracy;
          model.dispose();
        }
        const report = await dp.checkNeuron(`${neurons}#Swish`);
        out.checkPassed = report.passed;
        out.checks = report.checks.map((c: { name: string; status: string }) => `${c.name}:${c.status}`).join(",");
        return out;
      }, base)).catch(withLogs);
      t.diagnostic(JSON.stringify(result));
      for (const type of ["Swish", "SigmoidBlock", "StandardNeuron"]) assert.ok((result[`accuracy ${type}`] as number) >= 0.9, `${type}: accuracy ${result[`accuracy ${type}`]}`);
      assert.equal(result.checks, "gradients:passed,finite:passed,threads:passed");
      assert.equal(result.checkPassed, true);
    } finally {
      await page.close();
    }
  });

  test("page without COOP/COEP: threads: 0 trains; threads: 2 and shared: true raise the COOP/COEP error", { timeout: 120_000 }, async (t) => {
    const page = await open("plain");
    try {
      const result = await within(100_000, "plain page", page.evaluate(async (base: string) => {
        const dp = await import(`${base}src/index.js`);
        const out: Record<string, unknown> = { isolated: crossOriginIsolated, sab: typeof SharedArrayBuffer };
        const data = dp.syntheticClassification({ size: 256, features: 4, classes: 2, seed: 3 });
        const model = await dp.MultiLayerPerceptron.create({ inputs: 4, hidden: [8], outputs: 2, seed: 1 });
        out.shared = model.network.kernels.core.shared;
        const reports = await model.fit(data, { epochs: 20, batchSize: 32, learningRate: 0.2, threads: 0 });
        out.epochs = reports.length;
        out.accuracy = model.evaluate(data).accuracy;
        const caught = async (run: () => Promise<unknown>): Promise<Record<string, unknown>> => {
          try {
            await run();
            return { thrown: false };
          } catch (error) {
            const e = error as Error;
            return { thrown: true, name: e.name, message: e.message, downpour: e instanceof dp.DownpourError, isolation: e instanceof dp.CrossOriginIsolationError };
          }
        };
        out.threads = await caught(() => model.fit(data, { epochs: 1, threads: 2 }));
        out.sharedLoad = await caught(() => dp.Kernels.load({ shared: true }));
        return out;
      }, base)).catch(withLogs);
      t.diagnostic(JSON.stringify(result));
      assert.equal(result.isolated, false);
      assert.equal(result.sab, "undefined");
      assert.equal(result.shared, false, "the default core falls back to private memory");
      assert.equal(result.epochs, 20);
      assert.ok((result.accuracy as number) >= 0.9, `accuracy ${result.accuracy}`);
      for (const key of ["threads", "sharedLoad"]) {
        const error = result[key] as Record<string, unknown>;
        assert.equal(error.thrown, true, `${key} should throw`);
        assert.equal(error.name, "CrossOriginIsolationError", String(error.message));
        assert.equal(error.downpour, true);
        assert.equal(error.isolation, true);
        assert.match(String(error.message), /Cross-Origin-Opener-Policy: same-origin/);
        assert.match(String(error.message), /Cross-Origin-Embedder-Policy: require-corp/);
      }
    } finally {
      await page.close();
    }
  });
});
