// Learning curves: loss (train and test) and test accuracy per epoch as a vega-lite chart, rendered headless to an
// SVG string and written atomically.
import type { TopLevelSpec } from "vega-lite";
import type { EpochReport } from "../train/trainer.js";
import { writeFileAtomic } from "./files.js";

/** One point of a curve. */
interface Point {
  epoch: number;
  series: "train" | "test";
  value: number;
}

export const AXIS_TITLES = { epoch: "Epoch", loss: "Loss", accuracy: "Test accuracy" } as const;

/** Two panels sharing the epoch axis: loss (train, and test when evaluated), then test accuracy when there is one. */
export function curvesSpec(reports: readonly EpochReport[], title: string): TopLevelSpec {
  const losses: Point[] = reports.flatMap((r) => [
    { epoch: r.epoch, series: "train" as const, value: r.loss },
    ...(r.validation ? [{ epoch: r.epoch, series: "test" as const, value: r.validation.loss }] : []),
  ]);
  const accuracies: Point[] = reports.flatMap((r) =>
    r.validation?.accuracy === undefined ? [] : [{ epoch: r.epoch, series: "test" as const, value: r.validation.accuracy }],
  );
  const panels = [panel(losses, AXIS_TITLES.loss, ".3~f")];
  if (accuracies.length > 0) panels.push(panel(accuracies, AXIS_TITLES.accuracy, ".1~%"));
  return { $schema: "https://vega.github.io/schema/vega-lite/v6.json", title, vconcat: panels, config: { background: "white" } };
}

function panel(points: Point[], yTitle: string, format: string) {
  return {
    width: 480,
    height: 180,
    data: { values: points.filter((p) => Number.isFinite(p.value)) },
    mark: { type: "line" as const, point: true },
    encoding: {
      x: { field: "epoch", type: "quantitative" as const, title: AXIS_TITLES.epoch, axis: { format: "d", tickMinStep: 1 } },
      y: { field: "value", type: "quantitative" as const, title: yTitle, scale: { zero: false }, axis: { format } },
      color: { field: "series", type: "nominal" as const, title: "data", scale: { domain: ["train", "test"] } },
    },
  };
}

/** The chart as an SVG document (vega and vega-lite load on first use: startup stays fast without curves). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import("vega"), import("vega-lite")]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: "none", logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Renders the reports' curves and writes them to `path` (whole or not at all). */
export async function writeCurves(path: string, reports: readonly EpochReport[], title: string): Promise<void> {
  await writeFileAtomic(path, await renderSvg(curvesSpec(reports, title)));
}
