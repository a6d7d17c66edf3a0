// Child-process entry of the BSP benchmark (bench/bsp.ts): one peer (or one raw NATS client, or one local trainer)
// per process, so that no two peers share an event loop. The parent passes one JSON request as argv[2]; the child
// prints JSON lines on stdout: {"ready":true} once set up (connected, data loaded), then, after the parent writes
// "go\n" on its stdin, one {"result":...} line, and exits 0 (non-zero with a message on stderr on failure).
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { BspChannel } from "../../src/cluster/bsp-channel.js";
import { BspPeer } from "../../src/cluster/bsp.js";
import type { CombineMode } from "../../src/cluster/combine.js";
import { ClusterGradientExchange, type ExchangeCounters, type ExchangeStats } from "../../src/cluster/gradient-exchange.js";
import { trainPeer } from "../../src/cluster/peer-training.js";
import { loadMnist } from "../../src/data/mnist.js";
import { take } from "../../src/data/dataset.js";
import { Kernels, MultiLayerPerceptron, type Dataset } from "../../src/index.js";
import type { EpochReport } from "../../src/train/trainer.js";

/** A peer of an empty-superstep or combine case. */
export interface PeerRequest {
  role: "empty" | "combine";
  url: string;
  job: string;
  peers: number;
  index: number;
  /** Wall time the timed loop should last (peer 0 picks the step count from its warm-up and tells the others). */
  seconds: number;
  /** combine only: the mode and the gradient's length. */
  combine?: CombineMode;
  floats?: number;
}

/**
 * The answering side of a raw nats.js case: echoes requests ("echo"), acknowledges each `bytes` received ("sink"),
 * or ("swap") publishes `bytes` of its own to `<subject>.down` as soon as the first chunk of each `bytes` arrives.
 */
export interface RawRequest {
  role: "echo" | "sink" | "swap";
  url: string;
  subject: string;
  bytes?: number;
}

/** The MNIST recipe shared by the local run and the peers. */
export interface MnistRecipe {
  dir: string;
  /** Training rows used (60000 for all). */
  trainRows: number;
  batchSize: number;
  learningRate: number;
  momentum: number;
  maxEpochs: number;
  target: number;
  seed: number;
}

/** A local 2-thread run ("local") or one peer of the 2-peer job ("mnist-peer"). */
export interface MnistRequest {
  role: "local" | "mnist-peer";
  recipe: MnistRecipe;
  threads: number;
  url?: string;
  job?: string;
  peers?: number;
  index?: number;
  /** Peer only: the gradients' wire dtype (default "f32"). */
  gradDtype?: "f32" | "f16";
  /** Peer only: local mini-batches per superstep, then the models are averaged (default 1). */
  syncEvery?: number;
}

export type ChildRequest = PeerRequest | RawRequest | MnistRequest;

/** What an empty/combine peer reports: the timed loop's steps and seconds, and (combine) the exchange's counters over it. */
export interface PeerReply {
  index: number;
  steps: number;
  seconds: number;
  /** combine only: the counters summed over the timed steps, and the last step's. */
  timed?: ExchangeCounters;
  last?: ExchangeCounters;
}

/** One epoch of an MNIST run, as the child saw it. */
export interface MnistEpoch {
  epoch: number;
  accuracy: number;
  /** Since "go": wall time at the end of this epoch (its validation included), and validation time so far. */
  wallSeconds: number;
  validationSeconds: number;
  trainSeconds: number;
}

export interface MnistReply {
  epochs: MnistEpoch[];
  /** Peer only: the exchange's totals over the run. */
  stats?: ExchangeStats;
}

const WARMUP_EMPTY = 50;
const WARMUP_COMBINE = 2;

function print(line: unknown): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** Resolves at the parent's "go" line on stdin. */
function go(): Promise<void> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    rl.on("line", (line) => {
      if (line.trim() === "go") {
        rl.close();
        resolve();
      }
    });
    rl.on("close", () => resolve());
    process.stdin.on("error", reject);
  });
}

/** Peer 0 tells every peer how many steps to time (from its warm-up's pace), in one superstep of its own. */
async function agreeSteps(peer: BspPeer, perStepMs: number, seconds: number): Promise<number> {
  if (peer.index === 0) {
    const steps = Math.max(3, Math.ceil((seconds * 1000) / Math.max(perStepMs, 1e-3)));
    for (let j = 1; j < peer.peers; j++) peer.send(j, { steps });
    await peer.sync();
    return steps;
  }
  await peer.sync();
  const [message] = peer.messages();
  const steps = (message?.data as { steps?: unknown } | undefined)?.steps;
  if (typeof steps !== "number") throw new Error(`bsp-child: peer ${peer.index} got no step count from peer 0`);
  return steps;
}

function minus(a: ExchangeCounters, b: ExchangeCounters): ExchangeCounters {
  return {
    supersteps: a.supersteps - b.supersteps,
    bytesSent: a.bytesSent - b.bytesSent,
    bytesReceived: a.bytesReceived - b.bytesReceived,
    waitMs: a.waitMs - b.waitMs,
    encodeMs: a.encodeMs - b.encodeMs,
    reduceMs: a.reduceMs - b.reduceMs,
  };
}

async function runPeer(request: PeerRequest): Promise<void> {
  const nc = await connect({ servers: request.url, timeout: 5_000 });
  const peer = await BspPeer.join({
    job: request.job, peers: request.peers, name: `bench-${request.index}`, index: request.index, connection: nc, joinTimeoutMs: 30_000, barrierTimeoutMs: 60_000,
  });
  try {
    print({ ready: true });
    await go();
    await peer.sync(); // everyone has been told to go
    const reply = request.role === "empty" ? await emptyLoop(peer, request) : await combineLoop(peer, request);
    print({ result: reply });
  } finally {
    await peer.close();
    await nc.close();
  }
}

async function emptyLoop(peer: BspPeer, request: PeerRequest): Promise<PeerReply> {
  const w0 = performance.now();
  for (let i = 0; i < WARMUP_EMPTY; i++) await peer.sync();
  const steps = await agreeSteps(peer, (performance.now() - w0) / WARMUP_EMPTY, request.seconds);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await peer.sync();
  return { index: peer.index, steps, seconds: (performance.now() - t0) / 1000 };
}

async function combineLoop(peer: BspPeer, request: PeerRequest): Promise<PeerReply> {
  const floats = request.floats!;
  const exchange = new ClusterGradientExchange(new BspChannel(peer), { combine: request.combine });
  try {
    const grads = Float32Array.from({ length: floats }, (_v, i) => Math.sin(i * 0.001 + peer.index));
    let step = 0;
    const once = async () => void (await exchange.allreduce(grads, { loss: 1, rows: 64 }, step++));
    const w0 = performance.now();
    for (let i = 0; i < WARMUP_COMBINE; i++) await once();
    const steps = await agreeSteps(peer, (performance.now() - w0) / WARMUP_COMBINE, request.seconds);
    const before = exchange.stats;
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await once();
    const seconds = (performance.now() - t0) / 1000;
    const after = exchange.stats;
    return { index: peer.index, steps, seconds, timed: minus(after, before), last: after.last };
  } finally {
    exchange.dispose();
  }
}

async function runRaw(request: RawRequest): Promise<void> {
  const nc: NatsConnection = await connect({ servers: request.url, timeout: 5_000 });
  let received = 0;
  const bytes = request.bytes ?? 0;
  const chunk = nc.info!.max_payload - 64;
  const payload = new Uint8Array(bytes).fill(7);
  const swap = (_err: unknown, msg: { data: Uint8Array }) => {
    if (received === 0) for (let offset = 0; offset < bytes; offset += chunk) nc.publish(`${request.subject}.down`, payload.subarray(offset, Math.min(bytes, offset + chunk)));
    received += msg.data.byteLength;
    if (received >= bytes) received -= bytes;
  };
  const sub =
    request.role === "echo"
      ? nc.subscribe(request.subject, { callback: (_err, msg) => void msg.respond() })
      : request.role === "swap"
        ? nc.subscribe(request.subject, { callback: swap })
        : nc.subscribe(request.subject, {
          callback: (_err, msg) => {
            received += msg.data.byteLength;
            if (received >= bytes) {
              received -= bytes;
              nc.publish(`${request.subject}.ack`, new Uint8Array(0));
            }
          },
        });
  await nc.flush();
  print({ ready: true });
  await go(); // the parent closes stdin when done
  sub.unsubscribe();
  await nc.close();
  print({ result: { index: 0 } });
}

/** The first `rows` training rows and the whole test set, with the model of the recipe (seeded). */
async function mnistSetup(recipe: MnistRecipe): Promise<{ train: Dataset; test: Dataset; model: MultiLayerPerceptron }> {
  const { train, test } = await loadMnist(recipe.dir);
  const kernels = await Kernels.load({ shared: true });
  const model = await MultiLayerPerceptron.create({ inputs: 784, hidden: [128], outputs: 10, seed: recipe.seed }, { kernels });
  return { train: recipe.trainRows < train.size ? take(train, recipe.trainRows) : train, test, model };
}

async function runMnist(request: MnistRequest): Promise<void> {
  const { recipe } = request;
  const { train, test, model } = await mnistSetup(recipe);
  const options = { epochs: recipe.maxEpochs, batchSize: recipe.batchSize, learningRate: recipe.learningRate, momentum: recipe.momentum, threads: request.threads, seed: recipe.seed };
  const abort = new AbortController();
  const epochs: MnistEpoch[] = [];
  let t0 = 0;
  let validationSeconds = 0;
  let trainSeconds = 0;
  const onEpoch = (report: EpochReport) => {
    const now = performance.now();
    validationSeconds += report.validationSeconds ?? 0;
    trainSeconds += report.seconds;
    const accuracy = report.validation?.accuracy ?? 0;
    epochs.push({ epoch: report.epoch, accuracy, wallSeconds: (now - t0) / 1000, validationSeconds, trainSeconds });
    if (accuracy >= recipe.target) abort.abort();
  };
  const hooks = { validation: test, signal: abort.signal, onEpoch };
  print({ ready: true });
  await go();
  t0 = performance.now();
  if (request.role === "local") {
    await model.fit(train, { ...options, ...hooks });
    print({ result: { epochs } satisfies MnistReply });
  } else {
    const result = await trainPeer({
      job: request.job!, peers: request.peers!, index: request.index!, name: `mnist-${request.index}`, connection: { servers: request.url! },
      model, data: train, train: options, combine: "allreduce", gradDtype: request.gradDtype ?? "f32", syncEvery: request.syncEvery ?? 1, hooks,
      bsp: { joinTimeoutMs: 30_000, barrierTimeoutMs: 120_000 },
    });
    print({ result: { epochs, stats: result.stats } satisfies MnistReply });
  }
  model.dispose();
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? "") as ChildRequest;
  if (request.role === "empty" || request.role === "combine") await runPeer(request as PeerRequest);
  else if (request.role === "echo" || request.role === "sink" || request.role === "swap") await runRaw(request as RawRequest);
  else await runMnist(request as MnistRequest);
  process.exit(0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`bsp-child: ${error instanceof Error ? (error.stack ?? error.message) : JSON.stringify(error)}\n`);
    process.exit(1);
  });
}
