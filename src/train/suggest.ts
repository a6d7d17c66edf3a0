// The nearest known name to a mistyped one (option keys of fit() and resolveTrainOptions): the same name in
// another case or in kebab/snake case, its initials ("lr"), a prefix, or a small edit distance.

/** The known name `name` most likely stands for, or undefined when none is close. */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  const plain = normalize(name);
  if (plain.length === 0) return undefined;
  return (
    known.find((k) => normalize(k) === plain) ??
    known.find((k) => initials(k) === plain && plain.length >= 2) ??
    shortest(known.filter((k) => plain.length >= 3 && normalize(k).startsWith(plain))) ??
    closest(plain, known)
  );
}

/** ' (did you mean "learningRate"?)', or "" when no known name is close. */
export function didYouMean(name: string, known: readonly string[]): string {
  const near = nearestName(name, known);
  return near === undefined ? "" : ` (did you mean "${near}"?)`;
}

// "batch-size", "Batch_Size", "batchSize" all become "batchsize".
function normalize(name: string): string {
  return name.replace(/[-_\s]/g, "").toLowerCase();
}

// "learningRateDecay" -> "lrd".
function initials(name: string): string {
  return (
    (name[0] ?? "").toLowerCase() +
    name
      .slice(1)
      .replace(/[^A-Z0-9]/g, "")
      .toLowerCase()
  );
}

function shortest(names: readonly string[]): string | undefined {
  return names.reduce<string | undefined>((best, n) => (best === undefined || n.length < best.length ? n : best), undefined);
}

// The known name within a third of the length in edits (at least 1, at most 3), the nearest first.
function closest(plain: string, known: readonly string[]): string | undefined {
  const limit = Math.min(3, Math.max(1, Math.floor(plain.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const k of known) {
    const d = editDistance(normalize(k), plain);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** Levenshtein distance, with a swap of two neighbours counted as one edit. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}
