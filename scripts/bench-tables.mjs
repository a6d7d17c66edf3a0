// Renders the recorded benchmark results (bench/results/*.json) as Markdown tables, each with a machine line (CPU,
// engine, core build, date), into the README between the <!-- bench:NAME --> markers.
// Usage: node scripts/bench-tables.mjs [--dir=bench/.scratch] [--stdout]  (--stdout prints instead of writing README.md)
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const args = process.argv.slice(2);
const dir = args.find((a) => a.startsWith("--dir="))?.slice("--dir=".length) ?? "bench/results";
const toStdout = args.includes("--stdout");
const readme = "README.md";
let text = readFileSync(readme, "utf8");

function load(name) {
  const data = JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8"));
  if (data.quick && !toStdout) throw new Error(`${dir}/${name}.json comes from a --quick run; not putting it in the README`);
  return data;
}

const cell = (v) => (v === null || v === undefined ? "–" : String(v));

function machineLine(data) {
  // Files recorded before the engine/cpu/build fields had runtime, variant and machine.model.
  const cpu = data.cpu ?? data.machine?.model ?? "unknown CPU";
  const cpus = data.cpus ?? data.machine?.cpus;
  const engine = (data.engine ?? data.runtime ?? "unknown engine").replace(/ v(\d)/, " $1");
  const build = data.build ?? data.variant ?? "not recorded";
  return `Machine: ${cpu}${cpus ? ` (${cpus} CPUs)` : ""}; engine ${engine}; core build ${build}; ${String(data.date ?? "").slice(0, 10)}.`;
}

/** A Markdown table; `left` lists the columns aligned left (default: the first). */
function table(headers, rows, format, left = [0]) {
  const lines = [`| ${headers.join(" | ")} |`, `|${headers.map((_, i) => (left.includes(i) ? "---" : "---:")).join("|")}|`];
  for (const row of rows) lines.push(`| ${format(row).map(cell).join(" | ")} |`);
  return lines.join("\n");
}

function place(name, body) {
  const pattern = new RegExp(`<!-- bench:${name} -->[\\s\\S]*?<!-- /bench:${name} -->`);
  if (!pattern.test(text)) throw new Error(`README.md has no <!-- bench:${name} --> ... <!-- /bench:${name} --> block`);
  text = text.replace(pattern, () => `<!-- bench:${name} -->\n${body}\n<!-- /bench:${name} -->`);
}

const gemm = load("gemm");
place(
  "gemm",
  `${machineLine(gemm)}\n\n` +
    table(["case", "ours GFLOP/s", "tfjs-wasm GFLOP/s", "ours/peer"], gemm.rows, (r) => [r.case, r.ours_gflops, r.peer_gflops, r.ratio]),
);

const train = load("train");
const trainRows = train.rows.map((r) => ({ peer_name: "tfjs-wasm", ...r }));
const notes = [`2 threads / 1 thread: ${train.scaling_2_over_1}x idle`];
if (train.contention_2_over_1 !== undefined) notes.push(`${train.contention_2_over_1}x with one core taken by a busy process`);
let summary = notes.join(", ") + ".";
if (train.sync_bit_identical !== undefined) {
  summary += ` Sync runs' final weights bit-identical across 1 and 2 threads (idle and busy): ${train.sync_bit_identical ? "yes" : "NO"}.`;
}
if (train.peers?.numpy?.skipped) summary += ` NumPy peer skipped: ${train.peers.numpy.skipped}.`;
else if (train.peers?.numpy?.blas) {
  const { numpy, blas } = train.peers.numpy;
  summary += ` NumPy ${numpy} over ${blas.library ?? "BLAS"} ${blas.version ?? ""} (kernel ${blas.kernel ?? "unknown"}).`;
}
place(
  "train",
  `${machineLine(train)}\n\n` +
    table(["case", "ours", "peer", "peer value", "ours/peer"], trainRows, (r) => [r.case, r.ours, r.peer === null ? null : r.peer_name, r.peer, r.ratio], [0, 2]) +
    `\n\n${summary}`,
);

const bsp = load("bsp");
const swap = bsp.rows.filter((r) => r.ratio_to_swap !== undefined).map((r) => `${r.case.replace(/^combine 1M floats \(4 MB\), /, "")} ${r.ratio_to_swap}x`);
place(
  "bsp",
  `${machineLine(bsp)} Load average ${bsp.load_average?.join(" → ") ?? "not recorded"} on ${bsp.cpus ?? "?"} CPUs.\n\n` +
    table(["case", "ours", "unit", "peer", "peer value", "ours/peer"], bsp.rows, (r) => [r.case, r.ours, r.unit, r.peer_name, r.peer, r.ratio], [0, 2, 3]) +
    (swap.length ? `\n\nAgainst a raw swap (both clients send 4 MB to the other at once, what a 2-peer exchange moves): ${swap.join(", ")}.` : ""),
);

const ps = load("ps");
place(
  "ps",
  `${machineLine(ps)} Load average ${ps.load_average?.join(" → ") ?? "not recorded"} on ${ps.cpus ?? "?"} CPUs. Time rows: lower is better.\n\n` +
    table(["case", "ours", "unit", "peer", "peer value", "ours/peer"], ps.rows, (r) => [r.case, r.ours, r.unit, r.peer_name, r.peer, r.ratio], [0, 2, 3]) +
    (ps.notes?.length ? `\n\n${ps.notes.map((n) => `- ${n}`).join("\n")}` : ""),
);

const sparse = load("sparse");
place(
  "sparse",
  `${machineLine(sparse)} Time rows: lower is better.\n\n` +
    table(["case", "ours", "unit", "peer", "peer value", "ours/peer"], sparse.rows, (r) => [r.case, r.ours, r.unit, r.peer_name, r.peer, r.ratio], [0, 2, 3]),
);

const onnx = load("onnx");
place(
  "onnx",
  `${machineLine(onnx)} Rows/s: higher is better.\n\n` +
    table(["case", "ours", "unit", "peer", "peer value", "ours/peer"], onnx.rows, (r) => [r.case, r.ours, r.unit, r.peer_name, r.peer, r.ratio], [0, 2, 3]),
);

if (toStdout) {
  process.stdout.write(text.slice(text.indexOf("<!-- bench:gemm -->"), text.indexOf("<!-- /bench:onnx -->") + 20) + "\n");
} else {
  writeFileSync(`${readme}.tmp`, text);
  renameSync(`${readme}.tmp`, readme);
  console.log(`README benchmark tables updated from ${dir}/`);
}
