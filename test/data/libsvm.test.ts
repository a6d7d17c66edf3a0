// libsvm reader: dense rows from sparse lines, comments, feature counts, and located errors for bad tokens.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DataError, readLibsvm } from "../../src/data/index.js";
import { tempDir, writeTemp } from "../support/temp.js";

async function rejectsAt(promise: Promise<unknown>, pattern: RegExp, line?: number): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DataError, `expected a DataError, got ${String(error)}`);
    assert.match(error.message, pattern);
    if (line !== undefined) assert.equal(error.line, line);
    return true;
  });
}

describe("readLibsvm", () => {
  const dir = tempDir("libsvm");
  const good = ["# a comment line", "1 1:0.5 3:2", "0 2:-1.5e1   # trailing comment", "", "2 qid:7 1:1 2:2 3:3", "0"].join("\n");

  test("sparse rows become dense rows, features = the largest index", async () => {
    const ds = await readLibsvm(writeTemp(dir, "good.svm", good), { classes: 3 });
    assert.equal(ds.size, 4);
    assert.equal(ds.features, 3);
    assert.deepEqual([...ds.x], [0.5, 0, 2, 0, -15, 0, 1, 2, 3, 0, 0, 0]);
    assert.deepEqual([...ds.labels!], [1, 0, 2, 0]);
    assert.deepEqual([...ds.y.subarray(0, 3)], [0, 1, 0]);
    assert.equal(ds.name, "good.svm");
  });

  test("a larger features count pads with zeros; without classes y is the label value", async () => {
    const ds = await readLibsvm(writeTemp(dir, "reg.svm", "-1.5 2:1\r\n+2 1:4\r\n"), { features: 4 });
    assert.equal(ds.features, 4);
    assert.deepEqual([...ds.x], [0, 1, 0, 0, 4, 0, 0, 0]);
    assert.deepEqual([...ds.y], [-1.5, 2]);
    assert.equal(ds.labels, undefined);
  });

  test("bad tokens, indices and labels name the file, line and token", async () => {
    const cases: [string, string, RegExp, number][] = [
      ["token.svm", "1 1:1\n0 2:x\n", /token\.svm line 2, column 2 \("2:x"\): expected index:value/, 2],
      ["nocolon.svm", "1 5\n", /nocolon\.svm line 1, column 2 \("5"\): expected index:value/, 1],
      ["zero.svm", "1 0:1\n", /zero\.svm line 1, column 2 \("0:1"\): index 0 is not >= 1/, 1],
      ["order.svm", "1 1:1\n1 1:1 3:1 2:1\n", /order\.svm line 2, column 4 \("2:1"\): index 2 does not increase \(previous 3\)/, 2],
      ["repeat.svm", "1 2:1 2:5\n", /index 2 does not increase/, 1],
      ["label.svm", "1 1:1\n\nyes 1:1\n", /label\.svm line 3, column 1: expected a numeric label, got "yes"/, 3],
    ];
    for (const [name, text, pattern, line] of cases) await rejectsAt(readLibsvm(writeTemp(dir, name, text)), pattern, line);
  });

  test("an index above features, or a label outside the classes, is located", async () => {
    await rejectsAt(readLibsvm(writeTemp(dir, "wide.svm", "1 1:1\n0 2:1 5:1\n"), { features: 4 }), /wide\.svm line 2, column 3 \("5:1"\): index 5 is above the 4 features/, 2);
    await rejectsAt(readLibsvm(writeTemp(dir, "pm1.svm", "+1 1:1\n-1 1:2\n"), { classes: 2 }), /pm1\.svm line 2, column 1: expected a class index in \[0, 2\), got -1/, 2);
  });

  test("files with no rows or no features are refused", async () => {
    await rejectsAt(readLibsvm(writeTemp(dir, "empty.svm", "# nothing\n\n")), /empty\.svm: no data rows/);
    await rejectsAt(readLibsvm(writeTemp(dir, "labels-only.svm", "1\n0\n")), /no feature values in any row/);
    assert.equal((await readLibsvm(writeTemp(dir, "labels-only2.svm", "1\n0\n"), { features: 2 })).size, 2);
  });
});
