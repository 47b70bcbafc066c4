/** Timing helpers shared by the benchmarks. */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';

export function median(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Milliseconds one call of `fn` takes. */
export function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

/** Median milliseconds of `runs` calls of `fn`. */
export const medianTime = (fn: () => void, runs: number): number => median(Array.from({ length: runs }, () => time(fn)));

/** What the figures were measured on, for the first line of a report. */
export const machine = (): string => `${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores), node ${process.version}`;
