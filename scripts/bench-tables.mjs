// Renders bench/results/*.json as Markdown tables into the README between the <!-- bench:NAME --> markers.
import { readFileSync, renameSync, writeFileSync } from "node:fs";

const readme = "README.md";
let text = readFileSync(readme, "utf8");

function table(name, headers, format) {
  const { rows } = JSON.parse(readFileSync(`bench/results/${name}.json`, "utf8"));
  const lines = [`| ${headers.join(" | ")} |`, `|${headers.map((_, i) => (i ? "---:" : "---")).join("|")}|`];
  for (const row of rows) lines.push(`| ${format(row).join(" | ")} |`);
  return lines.join("\n");
}

function place(name, body) {
  const pattern = new RegExp(`<!-- bench:${name} -->[\\s\\S]*?<!-- /bench:${name} -->`);
  if (!pattern.test(text)) throw new Error(`README.md has no <!-- bench:${name} --> ... <!-- /bench:${name} --> block`);
  text = text.replace(pattern, `<!-- bench:${name} -->\n${body}\n<!-- /bench:${name} -->`);
}

place("gemm", table("gemm", ["case", "ours GFLOP/s", "tfjs-wasm GFLOP/s", "ours/peer"], (r) => [r.case, r.ours_gflops, r.peer_gflops, r.ratio]));
const train = JSON.parse(readFileSync("bench/results/train.json", "utf8"));
place("train", table("train", ["case", "ours", "tfjs-wasm", "ours/peer"], (r) => [r.case, r.ours, r.peer, r.ratio]) + `\n\n2 threads / 1 thread: ${train.scaling_2_over_1}x.`);
writeFileSync(`${readme}.tmp`, text);
renameSync(`${readme}.tmp`, readme);
console.log("README benchmark tables updated");
