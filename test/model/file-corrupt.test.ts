// Bad model files, made by damaging real encoded bytes: each defect gets a ModelFileError naming file and problem.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DownpourError } from "../../src/errors.js";
import { ModelFileError, crc32, decodeModel, encodeModel } from "../../src/model/file/index.js";
import { contentsWithPadding, layoutOf, withHeader, withHeaderText, withValidChecksum } from "./fixtures.js";

const SOURCE = "/models/broken.dpnn";

/** Asserts decoding `bytes` throws a ModelFileError for SOURCE whose message matches every pattern. */
function assertRejects(bytes: Uint8Array, patterns: RegExp[]): void {
  assert.throws(
    () => decodeModel(bytes, SOURCE),
    (error: unknown) => {
      assert.ok(error instanceof ModelFileError, `expected ModelFileError, got ${error}`);
      assert.ok(error instanceof DownpourError);
      assert.equal(error.file, SOURCE);
      assert.ok(error.message.includes(SOURCE), `message names the file: ${error.message}`);
      for (const pattern of patterns) assert.match(error.message, pattern);
      return true;
    },
  );
}

function flipped(bytes: Uint8Array, offset: number, mask = 0x01): Uint8Array {
  const out = bytes.slice();
  out[offset]! ^= mask;
  return out;
}

function setU32(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(offset, value, true);
  return out;
}

const hex32 = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;
const contents = contentsWithPadding(3);
const bytes = encodeModel(contents);
const { headerLength, headerEnd, dataStart, checksumOffset } = layoutOf(bytes);

describe("decodeModel: preamble", () => {
  test("fixture has header padding to exercise", () => {
    assert.equal(dataStart - headerEnd, 3);
  });

  for (const length of [0, 1, 7, 8, 12, 15]) {
    test(`a file of ${length} bytes is shorter than the preamble`, () => {
      assertRejects(bytes.subarray(0, length), [/too short to be a downpour model file/, new RegExp(`${length} bytes, expected at least 16`)]);
    });
  }

  test("wrong magic names the expected and found bytes", () => {
    const gif = bytes.slice();
    gif.set(new TextEncoder().encode("GIF89a"), 0);
    assertRejects(gif, [/is not a downpour model file: expected magic DPOURNN/, /found "GIF89aN\\x00" \(47 49 46 38 39 61 4e 00\)/]);
    assertRejects(flipped(bytes, 7), [/not a downpour model file/, /found "DPOURNN\\x01"/]);
  });

  test("plain text is not a model file", () => {
    assertRejects(new TextEncoder().encode("hello, world, this is text\n"), [/not a downpour model file: expected magic DPOURNN/, /found "hello, w"/]);
  });

  for (const version of [0, 2, 7, 0xffffffff]) {
    test(`format version ${version} is unsupported`, () => {
      assertRejects(setU32(bytes, 8, version), [new RegExp(`has format version ${version}; this downpour reads version 1`)]);
    });
  }

  test("a header length past the end of the file", () => {
    assertRejects(setU32(bytes, 12, 0xffffffff), [/header length 4294967295 runs past the end of the file/, new RegExp(`the file has ${bytes.length} bytes`)]);
    for (const cut of [16, 17, 16 + (headerLength >> 1), headerEnd - 1]) {
      assertRejects(bytes.subarray(0, cut), [new RegExp(`header length ${headerLength} runs past the end`), new RegExp(`the file has ${cut} bytes`)]);
    }
  });
});

describe("decodeModel: header", () => {
  test("a header that is not JSON", () => {
    assertRejects(flipped(bytes, 16, 0x7b ^ 0x7a), [/header that is not valid UTF-8 JSON/, /expected a JSON object with kind, spec, meta and tensors/]);
    assertRejects(withHeaderText(bytes, '{"kind": "MultiLayer'), [/not valid UTF-8 JSON/]);
  });

  test("a header that is not UTF-8", () => {
    const invalid = withHeaderText(bytes, '{"kind":"\u00ff"}');
    const at = invalid.indexOf(0xc3);
    invalid[at] = 0xff; // a lone 0xff byte is never UTF-8
    assertRejects(withValidChecksum(invalid), [/not valid UTF-8 JSON/]);
  });

  test("the error keeps the parse failure as its cause", () => {
    assert.throws(() => decodeModel(withHeaderText(bytes, "{"), SOURCE), (error: unknown) => {
      assert.ok(error instanceof ModelFileError && error.cause instanceof SyntaxError);
      return true;
    });
  });

  const fieldCases: Array<[string, (h: any) => unknown, RegExp]> = [
    ["the header is an array", () => [], /field \(header\) must be an object, found \[\]/],
    ["the header is null", () => null, /field \(header\) must be an object, found null/],
    ["kind is missing", (h) => { delete h.kind; }, /field kind is missing; expected a non-empty string/],
    ["kind is a number", (h) => ({ ...h, kind: 3 }), /field kind must be a non-empty string, found 3/],
    ["spec is missing", (h) => { delete h.spec; }, /field spec is missing; expected the model's layer spec/],
    ["meta is missing", (h) => { delete h.meta; }, /field meta is missing; expected an object/],
    ["meta is a string", (h) => ({ ...h, meta: "adam" }), /field meta must be an object, found "adam"/],
    ["tensors is missing", (h) => { delete h.tensors; }, /field tensors is missing; expected an array/],
    ["tensors is an object", (h) => ({ ...h, tensors: {} }), /field tensors must be an array, found \{\}/],
    ["a tensor entry is a string", (h) => { h.tensors[2] = "w"; }, /field tensors\[2\] must be an object, found "w"/],
    ["a tensor name is missing", (h) => { delete h.tensors[1].name; }, /field tensors\[1\]\.name is missing/],
    ["a tensor shape is negative", (h) => { h.tensors[0].shape = [3, -5]; }, /field tensors\[0\]\.shape must be an array of non-negative integers, found \[3,-5\]/],
    ["a tensor shape is fractional", (h) => { h.tensors[0].shape = [1.5]; }, /field tensors\[0\]\.shape must be an array of non-negative integers/],
    ["a tensor shape holds a string", (h) => { h.tensors[0].shape = ["3", 5]; }, /field tensors\[0\]\.shape must be an array of non-negative integers/],
    ["a tensor group is null", (h) => { h.tensors[3].group = null; }, /field tensors\[3\]\.group must be a non-empty string, found null/],
    ["tensor names repeat", (h) => { h.tensors[4].name = "b1"; }, /field tensors\[4\]\.name repeats "b1" of tensors\[1\]; tensor names must be unique/],
  ];
  for (const [name, edit, pattern] of fieldCases) {
    test(`bad header field: ${name}`, () => {
      assertRejects(withHeader(bytes, edit), [/has a bad header/, pattern]);
    });
  }

  test("unknown header fields are ignored", () => {
    const decoded = decodeModel(withHeader(bytes, (h) => ({ ...h, comment: "added later" })));
    assert.equal(decoded.kind, "MultiLayerPerceptron");
  });
});

describe("decodeModel: size", () => {
  const offsets = [dataStart];
  for (const t of contents.tensors) offsets.push(offsets.at(-1)! + t.data.byteLength);

  test("truncated inside the header padding", () => {
    assertRejects(bytes.subarray(0, headerEnd + 1), [/is truncated: it ends at byte/, new RegExp(`tensor data starts at byte ${dataStart}`)]);
  });

  for (const [i, t] of contents.tensors.entries()) {
    if (t.data.length === 0) continue;
    for (const keep of [0, 1, t.data.byteLength - 1]) {
      test(`truncated in tensor ${t.name} with ${keep} of its ${t.data.byteLength} bytes`, () => {
        assertRejects(bytes.subarray(0, offsets[i]! + keep), [
          new RegExp(`is truncated: tensor "${t.name.replace(".", "\\.")}" \\(shape \\[${t.shape.join(",")}\\]\\) needs ${t.data.byteLength} bytes`),
          new RegExp(`from byte ${offsets[i]}, but only ${keep} are present`),
        ]);
      });
    }
  }

  for (const keep of [0, 1, 3]) {
    test(`truncated in the checksum with ${keep} of its 4 bytes`, () => {
      assertRejects(bytes.subarray(0, checksumOffset + keep), [
        new RegExp(`is truncated: expected a 4-byte CRC-32 at byte ${checksumOffset}, but only ${keep} bytes are present`),
      ]);
    });
  }

  test("a shape enlarged in the header makes the data truncated", () => {
    assertRejects(withHeader(bytes, (h) => { h.tensors[0].shape = [3, 50]; }), [/is truncated: tensor "w1" \(shape \[3,50\]\) needs 600 bytes/]);
  });

  for (const extra of [1, 4, 1000]) {
    test(`${extra} trailing byte(s) after the checksum`, () => {
      const longer = new Uint8Array(bytes.length + extra);
      longer.set(bytes);
      assertRejects(longer, [
        new RegExp(`has ${extra} trailing bytes? after its CRC-32`),
        new RegExp(`expected the file to end at byte ${bytes.length}, but it is ${bytes.length + extra} bytes long`),
      ]);
    });
  }
});

describe("decodeModel: checksum", () => {
  const stored = new DataView(bytes.buffer).getUint32(checksumOffset, true);
  const checksumError = (damaged: Uint8Array, storedValue: number) => [
    /is corrupted: checksum mismatch/,
    new RegExp(`stored ${hex32(storedValue)}, computed ${hex32(crc32(damaged.subarray(0, checksumOffset)))}`),
  ];

  test("a flipped byte inside a header string", () => {
    const at = bytes.indexOf(0x4d /* "M" of MultiLayerPerceptron */, 16);
    const damaged = flipped(bytes, at);
    assertRejects(damaged, checksumError(damaged, stored));
  });

  for (const [name, offset] of [
    ["the first data byte", dataStart],
    ["a middle data byte", (dataStart + checksumOffset) >> 1],
    ["the last data byte", checksumOffset - 1],
    ["the header padding", headerEnd],
  ] as const) {
    test(`a flipped bit in ${name}`, () => {
      const damaged = flipped(bytes, offset, 0x80);
      assertRejects(damaged, checksumError(damaged, stored));
    });
  }

  for (const at of [0, 3]) {
    test(`a flipped byte ${at} of the checksum itself`, () => {
      const damaged = flipped(bytes, checksumOffset + at, 0xff);
      assertRejects(damaged, checksumError(damaged, new DataView(damaged.buffer).getUint32(checksumOffset, true)));
    });
  }

  test("non-zero header padding under a valid checksum", () => {
    assertRejects(withValidChecksum(flipped(bytes, headerEnd)), [new RegExp(`byte 0x01 at offset ${headerEnd} in the header padding`), /expected zero bytes/]);
  });
});
