import * as tf from '@tensorflow/tfjs-core';
import * as w from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import path from 'node:path';
const require = createRequire(import.meta.url);
const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist/';
console.log(Object.keys(w), dir);
w.setWasmPaths(process.argv[2] === 'url' ? new URL('file://' + dir).href : dir);
if (process.argv[3]) w.setThreadsCount(+process.argv[3]);
console.log(await tf.setBackend('wasm'), tf.getBackend(), tf.env().features, w.getThreadsCount());
const a = tf.randomNormal([512,512]), b = tf.randomNormal([512,512]);
for (const [ta,tb] of [[false,false],[false,true],[true,false]]) {
  let best = 1e9;
  for (let r = 0; r < 5; r++) { const t0 = performance.now(); for (let i=0;i<5;i++) tf.tidy(()=>{tf.matMul(a,b,ta,tb).dataSync();}); best = Math.min(best,(performance.now()-t0)/5); }
  console.log(ta,tb,(2*512**3/best/1e6).toFixed(1));
}
