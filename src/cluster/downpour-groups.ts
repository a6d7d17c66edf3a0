// Hybrid Downpour (issue 9's task groups, as Apache Horn and DistBelief's model replicas have them): the job's N
// tasks form G groups of N / G; inside a group the tasks combine every mini-batch's gradient synchronously (issue 8's
// allreduce over a BSP sub-job of the group, so the barrier is the group's only), and each group is one replica of
// the parameter-server shards (replica-exchange.ts): its leader pushes the group's gradient after every step and
// pulls fresh parameters every nFetch steps, asynchronously relative to the other groups. G = N: every task is its
// own replica (Downpour with one push per mini-batch); G = 1: one synchronous replica talking to the shards.
import type { Model } from "../api/models.js";
import { InvalidArgumentError } from "../errors.js";
import { TRAIN_DEFAULTS, type TrainOptions } from "../train/options.js";
import type { EpochReport } from "../train/trainer.js";
import { BspPeer } from "./bsp.js";
import { BspChannel } from "./bsp-channel.js";
import {
  DOWNPOUR_DEFAULTS,
  type DownpourOptions,
  type DownpourResult,
  downpourSpecHash,
  downpourTrainOptions,
  jobFields,
  WORKERS_PER_TASK,
  connectTaskClient,
} from "./downpour-training.js";
import { ClusterGradientExchange, type ExchangeStats } from "./gradient-exchange.js";
import { splitDataset } from "./partition.js";
import { peerSpecHash } from "./peer-training.js";
import { type ReplicaPull, ReplicaExchange, type ReplicaStats } from "./replica-exchange.js";
import { StalenessHistogram } from "./staleness.js";
import { checkJobId } from "./subjects.js";

/**
 * Options of trainDownpourGroups: DownpourOptions plus the group count. `train.batchSize` is a GROUP's mini-batch:
 * each of its tasks computes batchSize / (tasks / groups) rows of it, so it must be a multiple of the group size.
 * Not with groups: consistency other than "async", staleness, workers, warmStart > 0, nPush > 1 (a group pushes
 * every step). nFetch counts group steps between pulls.
 */
export interface DownpourGroupsOptions extends DownpourOptions {
  /** Task groups G: 1 <= G <= tasks, tasks % G == 0. Task i is in group i % G, as member floor(i / G) (member 0,
   *  task g, leads group g and pushes as worker g * WORKERS_PER_TASK). Part of the job's spec hash. */
  groups: number;
  /** Called on every task after each pull of its group, once its parameters hold the pulled values. */
  onPull?: (pull: ReplicaPull & { group: number }) => void;
}

/** What one task's training gives: DownpourResult plus the task's group and the replica exchange's counters. */
export interface DownpourGroupsResult extends DownpourResult {
  group: { index: number; size: number; member: number; leader: boolean; job: string };
  replica: ReplicaStats;
  /** The group allreduce's counters. */
  exchange: ExchangeStats;
}

/** The task group of task `index` in a job of `tasks` tasks and `groups` groups (see DownpourGroupsOptions.groups). */
export function taskGroup(index: number, tasks: number, groups: number): { index: number; size: number; member: number } {
  return { index: index % groups, size: tasks / groups, member: Math.floor(index / groups) };
}

/** The job id of group g's BSP sub-job (InvalidJobIdError when the job id leaves no room for the suffix). */
export function groupJobId(job: string, group: number): string {
  return checkJobId(`${job}-g${group}`);
}

/** The groups of a job, checked (InvalidArgumentError naming the field) with the options groups cannot have. */
export function checkGroups(
  options: Pick<DownpourGroupsOptions, "groups" | "tasks" | "consistency" | "staleness" | "workers" | "warmStart" | "nPush">,
): number {
  const { groups, tasks } = options;
  const who = "trainDownpourGroups";
  if (!Number.isSafeInteger(tasks) || tasks < 1)
    throw new InvalidArgumentError(`${who}: tasks must be a positive integer, got ${String(tasks)}`);
  if (!Number.isSafeInteger(groups) || groups < 1 || groups > tasks || tasks % groups !== 0) {
    throw new InvalidArgumentError(
      `${who}: groups must be an integer in [1, tasks = ${tasks}] dividing tasks (equal groups), got ${String(groups)}`,
    );
  }
  if ((options.consistency ?? "async") !== "async")
    throw new InvalidArgumentError(
      `${who}: consistency must be "async" with groups (every group is an asynchronous replica), got ${JSON.stringify(options.consistency)}`,
    );
  for (const field of ["staleness", "workers"] as const) {
    if (options[field] !== undefined)
      throw new InvalidArgumentError(`${who}: ${field} applies to ssp and bsp jobs, not to task groups (got ${String(options[field])})`);
  }
  if ((options.warmStart ?? 0) !== 0)
    throw new InvalidArgumentError(`${who}: warmStart is not supported with groups (got ${String(options.warmStart)})`);
  if ((options.nPush ?? 1) !== 1)
    throw new InvalidArgumentError(
      `${who}: nPush must be 1 with groups (a group pushes its combined gradient every step), got ${String(options.nPush)}`,
    );
  return groups;
}

/** The spec hash the tasks of a grouped job join with: the Downpour job's fields plus groups. (The shards keep the
 *  plain Downpour hash: they serve any replica.) */
export function groupsSpecHash(
  model: Model,
  data: DownpourOptions["data"],
  options: Pick<
    DownpourGroupsOptions,
    "groups" | "train" | "tasks" | "shards" | "split" | "nFetch" | "nPush" | "warmStart" | "consistency" | "staleness"
  >,
): string {
  return peerSpecHash(model, data, { ...jobFields(options, downpourTrainOptions(model, options.train)), groups: options.groups });
}

/** The local trainer's options of a member: sync mode, its share of the group batch, and a no-op update (the shards
 *  apply the gradient with the job's optimizer). */
export function memberTrainOptions(train: TrainOptions, size: number): TrainOptions {
  const batchSize = train.batchSize ?? TRAIN_DEFAULTS.batchSize;
  if (!Number.isSafeInteger(batchSize) || batchSize < size || batchSize % size !== 0) {
    throw new InvalidArgumentError(
      `trainDownpourGroups: train.batchSize (a group's mini-batch, default ${TRAIN_DEFAULTS.batchSize}) must be a multiple of the group size (${size}), got ${String(batchSize)}`,
    );
  }
  return { ...train, mode: "sync", batchSize: batchSize / size, optimizer: "sgd", momentum: 0, l2: 0, learningRateDecay: 1 };
}

/**
 * Trains `options.model` as one task of a grouped Downpour job: checks the options, joins the job (refused by name
 * when another task has other options or another group count), joins its group's sub-job, connects to the shards
 * (started with startDownpourShard, as for trainDownpour), fits its split in sync mode with a ReplicaExchange, then
 * waits for every task and pulls the final parameters into the model. Rejects with InvalidArgumentError (options),
 * the joins' errors, the client's (ParameterServerError naming the shard) or the fit's. Trains the model in place.
 * The members of a group stop together (convergence sees the group's combined loss); an abort signal on one member
 * only makes the others fail at their next step (PeerLostError or BarrierTimeoutError of the group's sub-job).
 */
export async function trainDownpourGroups(options: DownpourGroupsOptions): Promise<DownpourGroupsResult> {
  const { model, data, tasks } = options;
  const groups = checkGroups(options);
  if (!Number.isInteger(options.shards) || options.shards < 1)
    throw new InvalidArgumentError(`trainDownpourGroups: shards must be a positive integer, got ${String(options.shards)}`);
  const train = downpourTrainOptions(model, options.train);
  const local = memberTrainOptions(train, tasks / groups);
  const nFetch = options.nFetch ?? DOWNPOUR_DEFAULTS.nFetch;
  const specHash = groupsSpecHash(model, data, options);
  const shardHash = downpourSpecHash(model, data, options);
  groupJobId(options.job, groups - 1); // the longest group job id, checked before anything joins
  const bsp = await BspPeer.join({
    ...options.bsp,
    job: options.job,
    peers: tasks,
    connection: options.connection,
    name: options.name,
    index: options.index,
    specHash,
  });
  try {
    const group = taskGroup(bsp.index, tasks, groups);
    const job = groupJobId(options.job, group.index);
    const groupBsp = await BspPeer.join({
      ...options.bsp,
      job,
      peers: group.size,
      connection: options.connection,
      name: bsp.name,
      index: group.member,
      specHash,
    });
    try {
      const inner = await connectTaskClient(options, shardHash, bsp, `, group ${group.index}`);
      const channel = new BspChannel(groupBsp);
      const combiner = new ClusterGradientExchange(channel, { combine: "allreduce", kernels: model.network.kernels });
      try {
        const leader = group.member === 0;
        const onPull = options.onPull;
        const exchange = new ReplicaExchange({
          group: combiner,
          channel,
          client: leader ? inner : undefined,
          worker: bsp.index * WORKERS_PER_TASK,
          nFetch,
          onPull: onPull ? (pull) => onPull({ ...pull, group: group.index }) : undefined,
        });
        const onEpoch = async (report: EpochReport) => {
          inner.epoch = report.epoch;
          await options.hooks?.onEpoch?.(report);
        };
        const part = splitDataset(data, tasks, bsp.index, options.split ?? DOWNPOUR_DEFAULTS.split);
        const reports = await model.fit(part, { ...local, ...options.hooks, onEpoch, exchange });
        await exchange.drain(); // the group's pushes are acknowledged
        await bsp.sync(); // every group's are: the shards hold the job's final parameters
        await inner.pull(model.network.params.block.f32());
        return {
          reports,
          task: { index: bsp.index, name: bsp.name },
          group: { ...group, leader, job },
          replica: exchange.stats,
          exchange: combiner.stats,
          client: inner.stats,
          versions: inner.versions(),
          staleness: exchange.staleness.summary(),
          clockStaleness: new StalenessHistogram().summary(),
          consistency: "async",
          bound: undefined,
          model,
          specHash,
        };
      } finally {
        combiner.dispose();
        await inner.close();
      }
    } finally {
      await groupBsp.close();
    }
  } finally {
    await bsp.close();
  }
}
