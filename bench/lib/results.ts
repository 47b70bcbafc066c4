/**
 * What a benchmark hands to the report (bench/report.ts): its figures as rows, each next to the
 * baseline measured in the same run and the ratio, in the very strings it printed. Written as
 * `<area>.json` into $BENCH_RESULTS_DIR when that is set (bench/run.sh sets it); otherwise nothing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machine } from './timing';

export interface ResultRow {
  /** The part of the benchmark the row belongs to ("1. TCP connect() latency"), if it has parts. */
  readonly section?: string;
  readonly label: string;
  /** As printed, with its unit: "12.3 ms". */
  readonly figure: string;
  /** The baseline's figure as printed, and what it is: "4.1 ms (bare YAML parse)". */
  readonly baseline?: string;
  /** As printed: "3.0×". */
  readonly ratio?: string;
  readonly note?: string;
}

export interface AreaResults {
  readonly area: string;
  readonly title: string;
  readonly machine: string;
  readonly rows: readonly ResultRow[];
  /** Lines printed after the table: targets met or missed, context. */
  readonly notes: readonly string[];
}

export class Results {
  private readonly rows: ResultRow[] = [];
  private readonly notes: string[] = [];
  private section: string | undefined;

  constructor(
    private readonly area: string,
    private readonly title: string,
  ) {}

  /** Rows added from now on belong to this part of the benchmark. */
  startSection(title: string): void {
    this.section = title;
  }

  row(label: string, figure: string, options: { baseline?: string; ratio?: string; note?: string } = {}): void {
    this.rows.push({ ...(this.section ? { section: this.section } : {}), label, figure, ...options });
  }

  note(text: string): void {
    this.notes.push(text);
  }

  /** Writes `<area>.json` into $BENCH_RESULTS_DIR; a no-op when the benchmark runs on its own. */
  save(): void {
    const dir = process.env.BENCH_RESULTS_DIR;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    const data: AreaResults = { area: this.area, title: this.title, machine: machine(), rows: this.rows, notes: this.notes };
    writeFileSync(join(dir, `${this.area}.json`), `${JSON.stringify(data, null, 2)}\n`);
  }
}

/** "4.1 ms (bare YAML parse)": a baseline figure and what was measured. */
export const baselineOf = (figure: string, what: string): string => `${figure} (${what})`;
