import { register } from 'node:module';

/**
 * Preloaded (after tsx) into the service child when the benchmark profiles it: registers a load
 * hook that keeps a copy of each project module as tsx compiled it, with its inline source map, in
 * BENCH_SOURCES_DIR, so that profile.ts can turn profile positions back into .ts lines.
 */
const dir = process.env.BENCH_SOURCES_DIR;
if (dir) register(new URL('./capture-hooks.ts', import.meta.url), { data: { dir } });
