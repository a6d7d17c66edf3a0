// Progress on stderr. Training: a live bar per epoch (samples/s, running loss) on a terminal, then one line per epoch;
// only the lines when stderr is not a terminal or with --quiet. Downloads: a byte bar per file, or a line per file.
import cliProgress from "cli-progress";
import type { DownloadProgress } from "../data/download.js";
import type { EpochReport, TrainProgress } from "../train/trainer.js";
import { epochLine, loss, rate } from "./format.js";
import type { CliIO } from "./io.js";

export interface EpochProgress {
  readonly onProgress: (progress: TrainProgress) => void;
  readonly onEpoch: (report: EpochReport) => void;
  /** Removes a bar still drawn (after an error). */
  stop(): void;
}

/** Progress for a run of `epochs` epochs: a bar when io has a terminal and not `quiet`. */
export function epochProgress(io: CliIO, epochs: number, quiet: boolean): EpochProgress {
  const terminal = quiet ? undefined : io.terminal;
  let bar: cliProgress.SingleBar | undefined;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    onProgress: (p) => {
      if (!terminal) return;
      const payload = { epoch: p.epoch, epochs, speed: rate(p.samplesPerSecond), loss: loss(p.loss) };
      if (!bar) {
        bar = newBar(terminal);
        bar.start(p.epochSamples, p.samples, payload);
      } else bar.update(p.samples, payload);
    },
    onEpoch: (report) => {
      stop();
      io.stderr(`${epochLine(report, epochs)}\n`);
    },
    stop,
  };
}

function newBar(stream: NodeJS.WriteStream): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    {
      stream,
      format: "epoch {epoch}/{epochs} {bar} {percentage}% | {value}/{total} samples | {speed} samples/s | loss {loss}",
      barsize: 30,
      clearOnComplete: true,
      hideCursor: false,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
}

/** Download progress: a byte bar per file on a terminal (unless `quiet`), else one line as each file starts. */
export function downloadProgress(io: CliIO, quiet = false): { onProgress: (p: DownloadProgress) => void; stop: () => void } {
  const terminal = quiet ? undefined : io.terminal;
  let current: string | undefined;
  let bar: cliProgress.SingleBar | undefined;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  const onProgress = (p: DownloadProgress) => {
    const key = `${p.file} ${p.url}`;
    if (key !== current) {
      stop();
      current = key;
      if (!terminal || p.totalBytes === undefined) io.stderr(`downloading ${p.url}\n`);
      else {
        bar = new cliProgress.SingleBar({ stream: terminal, format: `${p.file} {bar} {percentage}% | {value}/{total} bytes`, clearOnComplete: true }, cliProgress.Presets.shades_classic);
        bar.start(p.totalBytes, 0);
      }
    }
    bar?.update(p.receivedBytes);
  };
  return { onProgress, stop };
}
