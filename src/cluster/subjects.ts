// NATS subjects of a job: everything lives under downpour.<job>. so that two jobs on one server never mix; the job
// id is checked to be one subject token (and a valid JetStream bucket name part).
import { InvalidJobIdError } from "./errors.js";

/** The first token of every subject downpour uses. */
export const SUBJECT_ROOT = "downpour";
/** The longest job id accepted. */
export const MAX_JOB_ID_LENGTH = 64;

const JOB_ID = /^[A-Za-z0-9_-]+$/;
const JOB_ID_RULE =
  `use 1 to ${MAX_JOB_ID_LENGTH} ASCII letters, digits, "-" or "_" (no ".", "*", ">", spaces or other characters: ` +
  "the id is a NATS subject token)";

/** Returns `job` when it is a valid job id; else throws InvalidJobIdError (an InvalidArgumentError) naming it and the rule. */
export function checkJobId(job: unknown): string {
  if (typeof job !== "string" || job.length < 1 || job.length > MAX_JOB_ID_LENGTH || !JOB_ID.test(job)) {
    throw new InvalidJobIdError(job, JOB_ID_RULE);
  }
  return job;
}

/** The subjects of one job (built once; every string is a literal subject, `all` is the wildcard). */
export interface JobSubjects {
  readonly job: string;
  /** downpour.<job>.> : every subject of the job (for monitoring and permissions). */
  readonly all: string;
  /** downpour.<job>.join : membership (hello, ready). */
  readonly join: string;
  /** downpour.<job>.ctl : broadcast control (heartbeats, abort, done). */
  readonly control: string;
  /** downpour.<job>.peer.<uid> : one peer's inbox (data frames and barrier markers). */
  peer(uid: string): string;
}

/** The subjects of `job` (checked with checkJobId). */
export function jobSubjects(job: string): JobSubjects {
  checkJobId(job);
  const root = `${SUBJECT_ROOT}.${job}`;
  return {
    job,
    all: `${root}.>`,
    join: `${root}.join`,
    control: `${root}.ctl`,
    peer: (uid: string) => `${root}.peer.${uid}`,
  };
}

/** The longest peer name accepted. */
export const MAX_PEER_NAME_LENGTH = 128;

/** Whether `name` is a peer name: 1 to 128 characters, no control characters (names travel in messages, not subjects). */
export function isPeerName(name: unknown): name is string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what the rule refuses.
  return typeof name === "string" && name.length >= 1 && name.length <= MAX_PEER_NAME_LENGTH && !/[\u0000-\u001f\u007f]/.test(name);
}
