// Byte sizes and counts in plain words ("318 GB", "1 GiB", "78.5 million") for messages, and sizes from flags
// ("512M", "8G", "1.5g"). A leaf module (imports nothing), so every folder may use it.

const BINARY_UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"] as const;
const DECIMAL_UNITS = ["kB", "MB", "GB", "TB", "PB"] as const;

/** Multipliers of parseBytes' suffixes, all binary (1024-based) as in `java -Xmx8g` and docker's `--memory 8g`. */
const SUFFIX_POWER: Record<string, number> = { "": 0, k: 1, m: 2, g: 3, t: 4, p: 5 };

/** `value` with at most 3 significant digits and no trailing zeros: 317.6 -> "318", 79.42 -> "79.4", 1 -> "1". */
function threeDigits(value: number): string {
  return String(Number(value.toPrecision(3)));
}

// "1 GiB", "1.5 GiB", "512 MiB" when n is, to one decimal, an exact multiple of its largest binary unit.
function binaryExact(n: number): string | undefined {
  const power = Math.min(BINARY_UNITS.length, Math.floor(Math.log2(n) / 10));
  const value = n / 1024 ** power;
  return power >= 1 && Number.isInteger(value * 10) ? `${value} ${BINARY_UNITS[power - 1]}` : undefined;
}

// "318 GB", "79.4 MB", "1.23 kB": decimal units, 3 significant digits.
function decimal(n: number): string {
  let power = Math.min(DECIMAL_UNITS.length, Math.floor(Math.log10(n) / 3));
  if (Number(threeDigits(n / 1000 ** power)) >= 1000 && power < DECIMAL_UNITS.length) power++; // 999.6 MB -> 1 GB
  return `${threeDigits(n / 1000 ** power)} ${DECIMAL_UNITS[power - 1]}`;
}

/**
 * A byte count in plain words: below 1000 as "1 byte" / "512 bytes"; an exact binary multiple (memory limits,
 * usually) in binary units, "1 GiB", "1.5 GiB", "512 MiB"; anything else in decimal units with 3 significant
 * digits, "318 GB", "79.4 MB". Non-finite or negative counts are written as they are ("Infinity bytes").
 */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 1000) return `${Number.isFinite(n) ? threeDigits(n) : n} ${n === 1 ? "byte" : "bytes"}`;
  return binaryExact(n) ?? decimal(n);
}

/**
 * A size written as a number of bytes ("1073741824") or a number with a suffix K, M, G, T or P, optionally
 * followed by "B" or "iB", in any case, with an optional space: "512M", "8G", "8GB", "1.5g", "4 GiB". Suffixes
 * are binary: "1G" is 1024^3 bytes. The result is rounded to whole bytes. Returns undefined for anything else
 * (empty, negative, not a number, an unknown suffix).
 */
export function parseBytes(text: string): number | undefined {
  if (typeof text !== "string") return undefined;
  const match = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgtp])(?:i?b)?|b)?\s*$/i.exec(text);
  if (!match) return undefined;
  const power = SUFFIX_POWER[(match[2] ?? "").toLowerCase()]!;
  const bytes = Math.round(Number(match[1]) * 1024 ** power);
  return Number.isFinite(bytes) ? bytes : undefined;
}

/** A count in plain words: below a million as digits ("101770"), else "78.5 million", "79.5 billion", "1.2 trillion". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n) || Math.abs(n) < 1e6) return String(n);
  const [scale, word] = Math.abs(n) >= 1e12 ? [1e12, "trillion"] : Math.abs(n) >= 1e9 ? [1e9, "billion"] : [1e6, "million"];
  return `${threeDigits(n / scale)} ${word}`;
}
