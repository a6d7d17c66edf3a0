// The `downpour/cluster` entry: training across processes and machines joined by NATS (Node, Bun, Deno). The
// connection, the BSP engine (Hama's peers, supersteps and barrier), and the gradient exchange that lets each
// peer's LocalTrainer combine its mini-batch gradients with the others' (master or reduce-scatter allreduce); the
// parameter-server shards, their client and Downpour SGD's tasks; datasets in the object store.
export * from "../node/index.js";
export { CONNECTION_DEFAULTS, ConnectionError, connectCluster, type ClusterConnectionOptions, type ConnectionFailure } from "./connection.js";
export {
  BSP_DEFAULTS, BspPeer, runBsp, type BspMessage, type BspOptions, type BspPayload, type BspProgram, type PeerStats, type PeerStatus,
} from "./bsp.js";
export { checkJobId, jobSubjects, SUBJECT_ROOT, type JobSubjects } from "./subjects.js";
export {
  BarrierTimeoutError, ClusterError, InvalidJobIdError, MembershipError, MessageError, PeerLostError, type PeerLossReason,
} from "./errors.js";
export { MemoryChannelGroup, type ChannelMessage, type ChannelPayload, type PeerChannel } from "./channel.js";
export { BspChannel } from "./bsp-channel.js";
export {
  CLUSTER_EXCHANGE_DEFAULTS, ClusterGradientExchange, ExchangeError, GRAD_DTYPES,
  type ClusterExchangeOptions, type CombineMode, type ExchangeCounters, type ExchangeStats, type GradDtype,
} from "./gradient-exchange.js";
export { COMBINE_MODES } from "./combine.js";
export { DEFAULT_SHARD_ALIGN, shardRanges, splitDataset, splitRows, type SplitMode } from "./partition.js";
export { PEER_TRAINING_DEFAULTS, peerSpecHash, trainPeer, type PeerTrainingOptions, type PeerTrainingResult } from "./peer-training.js";
export {
  DATA_STORE_DEFAULTS, fetchDataset, listDatasets, parseStoredDataRef, putDataset, StoredDataError, storedDataRef,
  type FetchDatasetOptions, type PutDatasetOptions, type StoredDataFailure, type StoredDataset,
} from "./data-store.js";
export { freePort, natsServerPath, NatsServerMissingError, startNatsServer, type NatsServer, type NatsServerOptions } from "./nats-server.js";
export {
  networkSegments, PARAMETER_SHARD_DEFAULTS, ParameterShard,
  type ParameterSegment, type ParameterShardOptions, type ShardOptimizerOptions, type ShardRestore, type ShardStats,
} from "./ps-shard.js";
export {
  PARAMETER_CLIENT_DEFAULTS, ShardedParameterClient,
  type ParameterClientOptions, type ParameterClientStats, type ReadCondition, type ReadResult, type ShardVersion,
} from "./ps-client.js";
export { ParameterServerError, type ParameterServerFailure, type ShardInfo } from "./ps-protocol.js";
export {
  CONSISTENCIES, DOWNPOUR_DEFAULTS, downpourSpecHash, readBound, startDownpourShard, trainDownpour, WORKERS_PER_TASK,
  type Consistency, type DownpourOptions, type DownpourResult, type DownpourShardOptions,
} from "./downpour-training.js";
export {
  checkGroups, groupJobId, groupsSpecHash, memberTrainOptions, taskGroup, trainDownpourGroups,
  type DownpourGroupsOptions, type DownpourGroupsResult,
} from "./downpour-groups.js";
export {
  REPLICA_EXCHANGE_DEFAULTS, ReplicaExchange, type GroupExchange, type ReplicaExchangeOptions, type ReplicaPull, type ReplicaStats,
} from "./replica-exchange.js";
export {
  epochOrder, PORTION_DEFAULTS, trainDownpourPortions, UNIT_WORKER_BASE, unitWorker,
  type DownpourPortionsOptions, type DownpourPortionsResult, type PortionEpochReport, type PortionOptions,
} from "./downpour-portions.js";
export {
  PORTION_CLIENT_DEFAULTS, PORTION_QUEUE_DEFAULTS, PortionQueue, PortionQueueClient, PortionQueueError, PortionQueueServer, PortionRequestError, portionSubject,
  type LeaseAnswer, type PortionCounters, type PortionQueueOptions, type TaskCounters,
} from "./portion-queue.js";
export {
  decodeSnapshot, encodeSnapshot, SNAPSHOT_FORMAT_VERSION, SNAPSHOT_LIMITS, SnapshotError,
  type AppliedWindow, type DecodeSnapshotOptions, type ShardSnapshot, type SnapshotFailure,
} from "./snapshot.js";
export {
  DirectorySnapshotStore, NatsSnapshotStore, openSnapshotStore, SNAPSHOT_STORE_DEFAULTS, SnapshotStore, snapshotBucket, snapshotName,
  type LatestSnapshot, type NatsSnapshotStoreOptions, type SnapshotEntry, type SnapshotStoreOptions,
} from "./snapshot-store.js";
export {
  logStreamName, logSubject, SHARD_DURABILITY_DEFAULTS, ShardLog, ShardLogError, snapshotSubject,
  type ShardDurability, type ShardLogOptions,
} from "./durability.js";
export {
  JOB_AUTH_DEFAULTS, JobAuthError, jobAccount, jobAuthConfig, jobPermissions, writeJobAuth,
  type JobAuth, type JobAuthOptions, type JobAuthSpec, type JobCredentials, type JobJetStreamScope, type JobPermissions,
} from "./job-auth.js";
export { StalenessHistogram, stalenessText, type StalenessBucket, type StalenessSummary } from "./staleness.js";
export { initialRow, SPARSE_ROW_DEFAULTS, SparseRowStore, type SparseRowOptions, type SparseRowSnapshot } from "./sparse-rows.js";
export {
  MAX_SPARSE_FEATURES, ROWS_PROTOCOL_VERSION, rowOwner, rowSubjects, SparseRowError,
  type RowFailure, type RowShardInfo, type RowSubjects, type SparseRowErrorFields,
} from "./sparse-protocol.js";
export {
  SPARSE_SHARD_DEFAULTS, SparseRowServer, startSparseShard,
  type SparseRowServerOptions, type SparseRowStats, type SparseShard, type SparseShardOptions,
} from "./sparse-shard.js";
export { SPARSE_CLIENT_DEFAULTS, SparseRowClient, type SparseClientStats, type SparseRowClientOptions } from "./sparse-client.js";
export {
  evaluateSparseDownpour, SPARSE_DOWNPOUR_DEFAULTS, sparseJobSpec, sparseNetworkFromShards, sparseSpecHash, startSparseJobShard, trainSparseDownpour,
  type SparseDownpourOptions, type SparseDownpourResult, type SparseEpochReport, type SparseEvaluateOptions, type SparseEvaluation,
  type SparseJobOptions, type SparseJobShardOptions, type SparseNetworkOptions, type SparseSource,
} from "./sparse-downpour.js";
