// Seeded fuzzing of the config loader (readConfigFile and checkConfig): valid configs rewritten (key order, spacing,
// CRLF, a UTF-8 BOM) read to the same settings; random bytes, truncations, odd encodings, deep nesting, huge arrays,
// long keys and a wrong type for every key are refused with a ConfigError, never another error or a hang.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkConfig, readConfigFile } from "../../src/cli/config.js";
import { ConfigError } from "../../src/cli/errors.js";
import { SETTINGS } from "../../src/cli/settings.js";
import { tempDir, writeTemp } from "./helpers.js";
import { Fuzz } from "../support/fuzz.js";

const CASES = 150;
const CASE_TIMEOUT_MS = 5_000;
const TIMEOUT = { timeout: 60_000 };
const dir = tempDir("config-fuzz");


let files = 0;
const write = (content: string | Uint8Array) => writeTemp(dir, `${files++}.json`, content);

/** The settings read, or the ConfigError they were refused with; any other error or no answer in time fails. */
async function outcome(what: string, read: () => unknown): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${CASE_TIMEOUT_MS} ms (a hang)`)), CASE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([Promise.resolve().then(read), hang]);
  } catch (error) {
    if (error instanceof ConfigError) {
      assert.ok(error.message.length < 2000, `${what}: a message of ${error.message.length} characters`);
      return error;
    }
    throw new Error(
      `${what}: expected settings or a ConfigError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** A valid config: a few settings with values of their types, maybe a train object and a spec. */
function validConfig(fuzz: Fuzz): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  const choices: [string, () => unknown][] = [
    ["epochs", () => 1 + fuzz.int(50)],
    ["batchSize", () => 1 + fuzz.int(256)],
    ["learningRate", () => fuzz.pick([0.1, 0.01, 1e-4, 2.5])],
    ["hidden", () => Array.from({ length: 1 + fuzz.int(3) }, () => 1 + fuzz.int(512))],
    ["data", () => fuzz.pick(["mnist", "digits", "pima.csv", "données é.csv", "\u{1F600}.csv"])],
    ["holdout", () => fuzz.pick([0, 0.2, 100])],
    ["labelColumn", () => fuzz.pick([0, -1, "label"])],
    ["features", () => [0, 1, 2].slice(0, 1 + fuzz.int(3))],
    ["delimiter", () => fuzz.pick([",", ";", "\t"])],
    ["header", () => fuzz.chance(0.5)],
    ["model", () => fuzz.pick(["mlp", "logistic", "autoencoder"])],
    ["save", () => fuzz.pick([false, "m.dpnn"])],
    ["memoryLimit", () => fuzz.pick(["512M", "8G", 1073741824])],
    ["train", () => ({ beta1: 0.9, ...(fuzz.chance(0.5) ? { shuffle: false } : {}) })],
    [
      "spec",
      () => ({
        layers: [
          { units: 1 + fuzz.int(64), activation: "relu" },
          { units: 10, activation: "softmax" },
        ],
      }),
    ],
  ];
  for (const [key, value] of fuzz.shuffled(choices).slice(0, 1 + fuzz.int(6))) config[key] = value();
  return config;
}

/** The JSON text of `config` with random key order, indentation and line ends. */
function writeJson(fuzz: Fuzz, config: Record<string, unknown>): string {
  const ordered = Object.fromEntries(fuzz.shuffled(Object.entries(config)));
  const text = JSON.stringify(ordered, null, fuzz.pick([0, 2, 4, "\t"]));
  return fuzz.chance(0.3) ? text.replace(/\n/g, "\r\n") : text;
}

/** Values of every JSON type, and some just out of range. */
function oddValue(fuzz: Fuzz): string {
  return fuzz.pick([
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "1e400",
    "-1e400",
    "1e-400",
    '""',
    '"x"',
    '"\\ud800"',
    '"\\u0000"',
    "[]",
    "[1]",
    '["a", 2]',
    "[1.5]",
    "[-1]",
    "{}",
    '{"a": 1}',
    '{"__proto__": {"x": 1}}',
    `${"[".repeat(3000)}${"]".repeat(3000)}`,
    `[${Array.from({ length: 300 }, (_, i) => i).join(",")}]`,
    `"${"x".repeat(3000)}"`,
  ]);
}

describe("config loader fuzz", () => {
  test(`${CASES} valid configs, rewritten (key order, spacing, CRLF, a UTF-8 BOM), read to the same settings`, TIMEOUT, async () => {
    const fuzz = new Fuzz(41);
    for (let i = 0; i < CASES; i++) {
      const config = validConfig(fuzz);
      const text = (fuzz.chance(0.3) ? "\uFEFF" : "") + writeJson(fuzz, config);
      const what = `case ${i}: ${JSON.stringify(text.slice(0, 200))}`;
      const result = await outcome(what, () => readConfigFile(write(text), "c.json"));
      assert.ok(!(result instanceof ConfigError), `${what}: ${result instanceof ConfigError ? result.message : ""}`);
      assert.deepEqual(result, config, what);
    }
  });

  test(
    `${CASES} spoiled files (truncations, random bytes, NUL, UTF-16, lone surrogates) are refused with a ConfigError`,
    TIMEOUT,
    async () => {
      const fuzz = new Fuzz(42);
      for (let i = 0; i < CASES; i++) {
        const text = writeJson(fuzz, validConfig(fuzz));
        const bytes = Buffer.from(text);
        const at = fuzz.int(bytes.length);
        const spoiled = fuzz.pick([
          () => bytes.subarray(0, at),
          () => Buffer.concat([bytes.subarray(0, at), Buffer.from([0]), bytes.subarray(at)]),
          () => Buffer.concat([bytes.subarray(0, at), Buffer.from([0xed, 0xa0, 0x80, 0xff]), bytes.subarray(at)]),
          () => Buffer.from(`\uFEFF${text}`, "utf16le"),
          () => Buffer.from(Array.from({ length: fuzz.int(200) }, () => fuzz.int(256))),
          () => Buffer.from(Array.from({ length: fuzz.int(200) }, () => fuzz.pick([...Buffer.from('{}[]":,0123456789.-etrufalsn ')]))),
        ])();
        const what = `case ${i}: ${JSON.stringify(spoiled.toString("latin1").slice(0, 200))}`;
        // a spoiled file may still be valid JSON of valid settings (a cut in trailing spaces, a NUL inside a file name)
        await outcome(what, () => readConfigFile(write(spoiled), "c.json"));
      }
    },
  );

  test("every key with values of every type: a ConfigError or accepted, never another error", TIMEOUT, async () => {
    const fuzz = new Fuzz(43);
    const keys = [...SETTINGS.map((s) => s.key), "train", "spec"];
    for (const key of keys) {
      for (let i = 0; i < 6; i++) {
        const text = `{"${key}": ${oddValue(fuzz)}}`;
        await outcome(`${key}: ${text.slice(0, 120)}`, () => readConfigFile(write(text), "c.json"));
      }
    }
  });

  test(
    "odd nested values in train and spec, deep nesting, huge arrays and long keys are refused or accepted quickly",
    TIMEOUT,
    async () => {
      const fuzz = new Fuzz(44);
      const texts = [
        `${"[".repeat(100000)}${"]".repeat(100000)}`,
        `${'{"a":'.repeat(50000)}1${"}".repeat(50000)}`,
        `{"hidden": ${"[".repeat(100000)}${"]".repeat(100000)}}`,
        `{"spec": {"layers": [${"[".repeat(50000)}${"]".repeat(50000)}]}}`,
        `{"train": ${'{"a":'.repeat(20000)}1${"}".repeat(20000)}}`,
        `{"hidden": [${Array.from({ length: 100000 }, () => "1.5").join(",")}]}`,
        `{"features": [${Array.from({ length: 100000 }, (_, i) => i).join(",")}]}`,
        `{"data": "${"x".repeat(100000)}"}`,
        `{"${"k".repeat(100000)}": 1}`,
        `{"${"e".repeat(3)}pochs": 1}`,
        '{"__proto__": {"epochs": 1}}',
        '{"constructor": 1}',
        '{"toString": 1}',
        '{"train": {"__proto__": 1}}',
        '{"train": {"convergence": null}}',
        '{"train": 5}',
        '{"spec": {"layers": "3"}}',
        '{"spec": {"layers": [null]}}',
        '{"spec": {"layers": [{"units": 1e400}]}}',
        '{"spec": []}',
        "[]",
        '"text"',
        "null",
        "",
      ];
      for (let i = 0; i < CASES / 2; i++)
        texts.push(`{"${fuzz.pick(["train", "spec"])}": {"${fuzz.pick(["layers", "beta1", "units", "x"])}": ${oddValue(fuzz)}}}`);
      for (const text of texts) await outcome(text.slice(0, 100), () => readConfigFile(write(text), "c.json"));
      for (const value of [undefined, Number.NaN, () => 1, Symbol("s"), 10n, new Map(), Object.create(null)]) {
        await outcome(String(typeof value), () => checkConfig(value, "c.json"));
      }
    },
  );
});
