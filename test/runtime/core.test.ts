// Loading the core: the variant picked for this engine, bad bytes, and what each build reports about itself.
import assert from "node:assert/strict";
import { cpus } from "node:os";
import { describe, test } from "node:test";
import { CoreLoadError } from "../../src/errors.js";
import { instantiateCore, loadCore } from "../../src/runtime/core.js";
import { detectPlatform, runtimeName } from "../../src/runtime/platform.js";
import { engineHasRelaxedSimd, engineHasSimd, pickVariant } from "../../src/runtime/variants.js";
import { variantsToTest } from "../helpers.js";

describe("core loading", () => {
  test("auto picks relaxed SIMD exactly where the engine validates it", () => {
    assert.ok(engineHasSimd());
    assert.equal(pickVariant(), engineHasRelaxedSimd() ? "relaxed" : "simd");
    if (!engineHasRelaxedSimd()) assert.throws(() => pickVariant("relaxed"), CoreLoadError);
  });

  test("the detected platform matches the runtime", async () => {
    // Independent of runtimeName(): the runner's word (scripts/test-all.mjs sets it), else process.versions,
    // where Bun and Deno add their own entry beside the Node version they emulate.
    const versions = process.versions as Record<string, string | undefined>;
    const fromVersions = versions.bun ? "bun" : versions.deno ? "deno" : "node";
    const expected = process.env.DOWNPOUR_TEST_RUNTIME ?? fromVersions;
    assert.equal(fromVersions, expected, `process.versions says ${fromVersions}, the runner says ${expected}`);
    assert.equal(runtimeName(), expected);
    const platform = await detectPlatform();
    assert.equal(platform.name, expected);
    const cores = platform.hardwareConcurrency();
    assert.ok(Number.isInteger(cores) && cores >= 1 && cores <= Math.max(1, cpus().length), `hardwareConcurrency ${cores}`);
  });

  for (const variant of variantsToTest()) {
    for (const shared of [false, true]) {
      test(`${variant}${shared ? " shared" : ""} build reports its tile and features`, async () => {
        const core = await loadCore(await detectPlatform(), { variant, shared });
        assert.equal(core.exports.core_relaxed_simd(), variant === "relaxed" ? 1 : 0);
        assert.equal(core.gemmTileRows, variant === "relaxed" ? 6 : 4);
        assert.equal(core.memory.buffer instanceof SharedArrayBuffer, shared);
        assert.ok(core.exports.f32_gemm_workspace_bytes(512, 512, 512) > 0);
      });
    }
  }

  test("corrupt bytes and a missing build give CoreLoadError naming the build", async () => {
    await assert.rejects(instantiateCore(new Uint8Array([0, 97, 115, 109, 1, 0, 0]), "simd"), (e: Error) =>
      e instanceof CoreLoadError && /core-simd\.wasm/.test(e.message));
    const missing = { readCore: async () => { throw new Error("ENOENT"); } };
    await assert.rejects(loadCore(missing, { variant: "simd" }), (e: Error) => e instanceof CoreLoadError && /build:wasm/.test(e.message));
    await assert.rejects(loadCore(await detectPlatform(), { initialPages: 4, maximumPages: 2 }), CoreLoadError);
  });
});
