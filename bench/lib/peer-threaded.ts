// Child-process entry that times the peer's threaded build (see tfjs-peer.ts), kept out of the parent process so
// the thread shims and the backend's one-time initialisation do not affect the parent's single-thread peer.
// Usage: node peer-threaded.js '{"threads":2,"shapes":[{"m":1024,"n":1024,"k":1024,"transA":false,"transB":false}]}'
// Prints one JSON line: {"version","binary","threads","gflops":[...]}; exits non-zero with a message on failure.
import { fileURLToPath } from "node:url";
import { gemmGflops, measure, type MeasureOptions } from "./report.js";
import { loadPeer, peerMatMulCall, type GemmShape } from "./tfjs-peer.js";

/** What the parent asks for. */
export interface ThreadedRequest {
  threads: number;
  shapes: GemmShape[];
  measure?: MeasureOptions;
}

/** What the child prints. */
export interface ThreadedReply {
  version: string;
  binary: string;
  threads: number;
  gflops: number[];
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? "") as ThreadedRequest;
  const peer = await loadPeer(request.threads);
  const gflops = request.shapes.map((s) => {
    const { call, dispose } = peerMatMulCall(peer, s);
    try {
      return gemmGflops(s.m, s.n, s.k, measure(call, request.measure).seconds);
    } finally {
      dispose();
    }
  });
  const reply: ThreadedReply = { version: peer.version, binary: peer.binary, threads: peer.threads, gflops };
  process.stdout.write(JSON.stringify(reply) + "\n");
  // Emscripten's idle pthread workers would keep the process alive.
  process.exit(0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`peer-threaded: ${error instanceof Error ? error.message : JSON.stringify(error)}\n`);
    process.exit(1);
  });
}
