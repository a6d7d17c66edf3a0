import * as tf from '@tensorflow/tfjs-core';
import * as w from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import path from 'node:path';
const require = createRequire(import.meta.url);
const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist/';
w.setWasmPaths(dir);
await tf.setBackend('wasm');
const n = 512;
const a = tf.randomNormal([n,n]), b = tf.randomNormal([n,n]);
for (let i = 0; i < 8; i++) {
  const t0 = performance.now(); const c = tf.matMul(a,b); const t1 = performance.now(); c.dataSync(); const t2 = performance.now(); c.dispose();
  const t3 = performance.now(); const d = tf.matMul(a,b); const t4 = performance.now(); d.dispose();
  console.log('matMul', (t1-t0).toFixed(2), 'dataSync', (t2-t1).toFixed(2), 'matMul2', (t4-t3).toFixed(2));
}
console.log(tf.memory());
