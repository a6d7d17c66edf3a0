import * as tf from '@tensorflow/tfjs-core';
import * as w from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import path from 'node:path';
const require = createRequire(import.meta.url);
const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist/';
const mode = process.argv[2];
if (mode === 'thr') { tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true); w.setThreadsCount(2); }
if (mode === 'map') w.setWasmPaths({ 'tfjs-backend-wasm.wasm': '/nonexistent.wasm', 'tfjs-backend-wasm-simd.wasm': dir + 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm': '/nonexistent2.wasm' });
else w.setWasmPaths(dir);
const t = setTimeout(() => { console.log('TIMEOUT'); process.exit(2); }, 20000);
try { console.log('setBackend', await tf.setBackend('wasm'), tf.getBackend(), w.getThreadsCount()); } catch (e) { console.log('ERR', e); process.exit(1); }
clearTimeout(t);
for (const n of [512, 1024]) {
const a = tf.randomNormal([n,n]), b = tf.randomNormal([n,n]);
  let best = 1e9, bestNoSync = 1e9, sync = 1e9;
  for (let r = 0; r < 4; r++) { const t0 = performance.now(); for (let i=0;i<3;i++) tf.tidy(()=>tf.matMul(a,b).dataSync()); best = Math.min(best,(performance.now()-t0)/3); }
  for (let r = 0; r < 4; r++) { const t0 = performance.now(); for (let i=0;i<3;i++) tf.tidy(()=>{tf.matMul(a,b)}); bestNoSync = Math.min(bestNoSync,(performance.now()-t0)/3); }
  const c = tf.matMul(a,b); for (let r = 0; r < 4; r++) { const t0 = performance.now(); c.dataSync(); sync = Math.min(sync, performance.now()-t0); }
  console.log(n, 'with sync', (2*n**3/best/1e6).toFixed(2), 'nosync', (2*n**3/bestNoSync/1e6).toFixed(2), 'dataSync ms', sync.toFixed(3));
}
process.exit(0);
