// Bit-exact copies between Float32Arrays and little-endian bytes (NaN payloads and -0 preserved: no float loads).

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses each 4-byte group of `bytes` in place. */
function swapWords(bytes: Uint8Array): void {
  for (let i = 0; i + 3 < bytes.length; i += 4) {
    const [a, b, c, d] = [bytes[i]!, bytes[i + 1]!, bytes[i + 2]!, bytes[i + 3]!];
    bytes[i] = d;
    bytes[i + 1] = c;
    bytes[i + 2] = b;
    bytes[i + 3] = a;
  }
}

/** Writes `values` as little-endian float32 into `target` at byte `offset`. */
export function writeFloat32LE(target: Uint8Array, offset: number, values: Float32Array): void {
  target.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offset);
  if (!HOST_IS_LITTLE_ENDIAN) swapWords(target.subarray(offset, offset + values.byteLength));
}

/** A fresh Float32Array of `count` values read as little-endian float32 from `source` at byte `offset`. */
export function readFloat32LE(source: Uint8Array, offset: number, count: number): Float32Array {
  const values = new Float32Array(count);
  const bytes = new Uint8Array(values.buffer);
  bytes.set(source.subarray(offset, offset + bytes.length));
  if (!HOST_IS_LITTLE_ENDIAN) swapWords(bytes);
  return values;
}
