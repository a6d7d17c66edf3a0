// Builds the four release variants of the WASM core (plain/relaxed SIMD x private/shared memory) with asc.
import asc from "assemblyscript/asc";

const targets = ["simd", "relaxed", "simd-shared", "relaxed-shared"];

for (const target of targets) {
  const { error, stderr } = await asc.main(["--config", "asconfig.json", "--target", target], {});
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: target ${target} failed: ${error.message}`);
    process.exit(1);
  }
}
console.log(`build-wasm: built ${targets.map((t) => `core-${t}.wasm`).join(", ")}`);
