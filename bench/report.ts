// What every bench script reports the same way: the machine it ran on, and its block of
// BENCHMARKS.md, rewritten in place between the script's own markers.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { UsageError } from './flags.js';

const ROOT = new URL('../../', import.meta.url);

export function machine(): Record<string, string | number> {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Number((totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

/**
 * Replaces the block between `<!-- NAME:begin … -->` and `<!-- NAME:end -->` in BENCHMARKS.md
 * with `section`; a first run appends it under `heading`.
 */
export async function updateBenchmarksDoc(name: string, section: string, heading: string): Promise<void> {
  const begin = `<!-- ${name}:begin (written by bench/${name}.ts) -->`;
  const end = `<!-- ${name}:end -->`;
  const file = fileURLToPath(new URL('BENCHMARKS.md', ROOT));
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const start = doc.indexOf(begin);
  const stop = doc.indexOf(end);
  const block = `${begin}\n${section}\n${end}`;
  let next =
    start >= 0 && stop > start
      ? doc.slice(0, start) + block + doc.slice(stop + end.length)
      : `${doc.trimEnd()}\n\n## ${heading}\n\n${block}\n`;
  // `npm run lint` checks formatting, so write the file as prettier would.
  try {
    const prettier = await import('prettier');
    next = await prettier.format(next, { ...(await prettier.resolveConfig(file)), filepath: file });
  } catch {
    // prettier is a dev dependency; without it the tables are still valid markdown.
  }
  writeFileSync(file, next);
}

/** Writes a run's summary to bench/results/NAME-<start time>SUFFIX.json; returns the file's path. */
export function writeResults(name: string, started: Date, summary: unknown, suffix = ''): string {
  mkdirSync(new URL('bench/results/', ROOT), { recursive: true });
  const stamp = started.toISOString().slice(0, 19).replaceAll(':', '');
  const out = fileURLToPath(new URL(`bench/results/${name}-${stamp}${suffix}.json`, ROOT));
  writeFileSync(out, JSON.stringify(summary, null, 2) + '\n');
  return out;
}

/**
 * Runs a bench's main and exits: 0 when it resolves, 1 with the error when it rejects, 130 on a
 * signal. `cleanUp` runs whatever happens, so no process the bench started outlives it.
 */
export function runBench(main: () => Promise<void>, cleanUp: () => void): void {
  process.on('exit', cleanUp);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      cleanUp();
      process.exit(130);
    });
  }
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      if (err instanceof UsageError) console.error(`error: ${err.message}`);
      else console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
      cleanUp();
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
}
