import { Kernels, WorkerPool, ParallelGemm, matrix, runtimeName } from '/work/main/dist/src/index.js';
const k = await Kernels.load({ shared: true });
const pool = await WorkerPool.start(k.core, { threads: 2 });
const pg = new ParallelGemm(pool, k.arena);
const n = 1024;
const A = k.arena.alloc(n * n), B = k.arena.alloc(n * n), C = k.arena.alloc(n * n), C2 = k.arena.alloc(n * n);
A.f32().forEach((_, i, a) => a[i] = Math.sin(i)); B.f32().forEach((_, i, a) => a[i] = Math.cos(i));
k.gemm(matrix(C, n, n), matrix(A, n, n), matrix(B, n, n));
await pg.run(matrix(C2, n, n), matrix(A, n, n), matrix(B, n, n));
let maxd = 0; const c1 = C.f32(), c2 = C2.f32(); for (let i = 0; i < c1.length; i++) maxd = Math.max(maxd, Math.abs(c1[i] - c2[i]));
console.log(runtimeName(), k.core.variant, 'maxdiff', maxd);
for (const mode of ['async', 'sync', 'single']) {
  const reps = 10; const t0 = performance.now();
  for (let r = 0; r < reps; r++) {
    if (mode === 'async') await pg.run(matrix(C2, n, n), matrix(A, n, n), matrix(B, n, n));
    else if (mode === 'sync') pg.runSync(matrix(C2, n, n), matrix(A, n, n), matrix(B, n, n));
    else k.gemm(matrix(C2, n, n), matrix(A, n, n), matrix(B, n, n));
  }
  const dt = (performance.now() - t0) / reps; console.log(mode, (2 * n ** 3 / dt / 1e6).toFixed(1), 'GFLOP/s');
}
await pool.close();
console.log('closed');
