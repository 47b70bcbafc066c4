/**
 * `npm run test:mutation [-- --named | --datapath | --all]`
 *
 *   (no flag)   StrykerJS over the security-critical TypeScript (test/mutation/stryker.config.mjs),
 *               incremental: only mutants whose code or covering tests changed since the committed
 *               result file are tested again. Writes the Stryker section of test/mutation/REPORT.md
 *               (score per module, every surviving and every disabled mutant with its reason) and
 *               fails below MIN_SCORE.
 *   --named     the defences named in issue 13, weakened again one by one (namedSurvivors.ts).
 *   --datapath  the kernel, Go and control-plane mutations kept as patches (datapath.ts).
 *   --all       all three, in that order.
 *   --report-only  rewrite the Stryker section from the last run's result (test-results/mutation/mutation.json)
 *               without running anything.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeReportSection } from './reportFile';

const ROOT = join(__dirname, '..', '..');
export const MIN_SCORE = 90;
const RESULT = join(ROOT, 'test-results', 'mutation', 'mutation.json');

/** The modules the score is reported for, as path prefixes (first match wins). */
const MODULES: readonly [string, string][] = [
  ['src/core/firewall/', 'core/firewall (rule checks, runtime rules)'],
  ['src/core/policy/', 'core/policy (the decision)'],
  ['src/core/render/', 'core/render (Envoy, Corefile, BPF entries)'],
  ['src/core/agents/agentContainerSpec.ts', 'core/agents/agentContainerSpec.ts'],
  ['src/hostproxy/', 'hostproxy'],
  ['src/agentd/', 'agentd'],
  ['src/controlplane/', 'control plane: enrollment and down'],
];

interface Mutant {
  readonly id: string;
  readonly mutatorName: string;
  readonly replacement?: string;
  readonly status: string;
  readonly statusReason?: string;
  readonly location: { readonly start: { readonly line: number; readonly column: number } };
}
interface StrykerReport {
  readonly files: Record<string, { readonly source: string; readonly mutants: readonly Mutant[] }>;
}

interface Tally {
  detected: number;
  undetected: number;
  ignored: number;
  invalid: number;
}

const score = (t: Tally): number => (t.detected + t.undetected === 0 ? 100 : (100 * t.detected) / (t.detected + t.undetected));
const pct = (n: number): string => `${n.toFixed(1)}%`;

function tally(mutants: readonly Mutant[], into: Tally): void {
  for (const m of mutants) {
    if (m.status === 'Killed' || m.status === 'Timeout') into.detected++;
    else if (m.status === 'Survived' || m.status === 'NoCoverage') into.undetected++;
    else if (m.status === 'Ignored') into.ignored++;
    else into.invalid++; // CompileError, RuntimeError: not a program that could run
  }
}

function codeAt(source: string, line: number): string {
  return (source.split('\n')[line - 1] ?? '').trim().slice(0, 110);
}

function strykerSection(report: StrykerReport): { total: Tally; text: string } {
  const total: Tally = { detected: 0, undetected: 0, ignored: 0, invalid: 0 };
  const perModule = new Map<string, Tally>();
  const undetected: string[] = [];
  const ignored: string[] = [];
  for (const [file, { source, mutants }] of Object.entries(report.files).sort(([a], [b]) => a.localeCompare(b))) {
    const name = MODULES.find(([prefix]) => file.startsWith(prefix))?.[1] ?? file;
    const t = perModule.get(name) ?? { detected: 0, undetected: 0, ignored: 0, invalid: 0 };
    tally(mutants, t);
    tally(mutants, total);
    perModule.set(name, t);
    for (const m of mutants) {
      const where = `\`${file}:${m.location.start.line}\``;
      const what = `${m.mutatorName}${m.replacement !== undefined ? ` → \`${m.replacement.replace(/\s+/g, ' ').slice(0, 40).replace(/`/g, "'")}\`` : ''}`;
      const code = `\`${codeAt(source, m.location.start.line).replace(/`/g, "'").replace(/\|/g, '\\|')}\``;
      if (m.status === 'Survived' || m.status === 'NoCoverage') undetected.push(`| ${where} | ${m.status} | ${what.replace(/\|/g, '\\|')} | ${code} |`);
      if (m.status === 'Ignored') ignored.push(`| ${where} | ${what.replace(/\|/g, '\\|')} | ${(m.statusReason ?? '').replace(/\|/g, '\\|')} |`);
    }
  }
  const rows = [...perModule.entries()].map(([name, t]) => `| ${name} | ${pct(score(t))} | ${t.detected} | ${t.undetected} | ${t.ignored} | ${t.invalid} |`);
  // Modules of the configuration with no result yet (a first run not completed for them).
  for (const [, name] of MODULES) if (!perModule.has(name)) rows.push(`| ${name} | not run yet | | | | |`);
  const text = [
    '## StrykerJS: the security-critical TypeScript',
    '',
    `\`npm run test:mutation\` (incremental; config \`test/mutation/stryker.config.mjs\`), ${new Date().toISOString().slice(0, 10)}. ` +
      `Score = detected / (detected + undetected); compile errors (rejected by the TypeScript checker) are not programs and do not count. Threshold: ${MIN_SCORE}%.`,
    '',
    '| module | score | detected (killed, timeout) | undetected (survived, no coverage) | disabled | compile errors |',
    '|---|---|---|---|---|---|',
    ...rows,
    `| **all** | **${pct(score(total))}** | ${total.detected} | ${total.undetected} | ${total.ignored} | ${total.invalid} |`,
    '',
    `### Undetected mutants (${undetected.length})`,
    '',
    ...(undetected.length ? ['| where | status | mutation | code |', '|---|---|---|---|', ...undetected] : ['None.']),
    '',
    `### Disabled in place (${ignored.length}), each with why it cannot change behaviour`,
    '',
    ...(ignored.length ? ['| where | mutation | reason |', '|---|---|---|', ...ignored] : ['None.']),
  ].join('\n');
  return { total, text };
}

function run(command: string, args: readonly string[]): number {
  const child = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit' });
  return child.status ?? 1;
}

function stryker(reportOnly = false): boolean {
  const code = reportOnly ? 0 : run(process.execPath, [join(ROOT, 'node_modules', '@stryker-mutator', 'core', 'bin', 'stryker.js'), 'run', 'test/mutation/stryker.config.mjs']);
  if (code !== 0) {
    console.log(`not ok 1 - StrykerJS exited ${code}`);
    return false;
  }
  const { total, text } = strykerSection(JSON.parse(readFileSync(RESULT, 'utf8')) as StrykerReport);
  writeReportSection('stryker', text);
  const ok = score(total) >= MIN_SCORE;
  // One check, in the test runners' own words, so that test/run-all.sh counts it.
  console.log(`${ok ? 'ok' : 'not ok'} 1 - mutation score ${pct(score(total))} ${ok ? '>=' : '<'} ${MIN_SCORE}% over ${total.detected + total.undetected} mutants (test/mutation/REPORT.md)`);
  return ok;
}

function main(): void {
  const flags = new Set(process.argv.slice(2));
  const unknown = [...flags].filter((f) => !['--named', '--datapath', '--all', '--report-only'].includes(f));
  if (unknown.length) {
    console.error(`unknown flag ${unknown.join(', ')}: use --named, --datapath, --all or --report-only`);
    process.exit(2);
  }
  if (flags.has('--report-only')) process.exit(stryker(true) ? 0 : 1);
  const all = flags.has('--all');
  const steps: [string, () => boolean][] = [];
  if (all || (!flags.has('--named') && !flags.has('--datapath'))) steps.push(['stryker', stryker]);
  if (all || flags.has('--named')) steps.push(['named', () => run(process.execPath, ['--import', 'tsx', 'test/mutation/namedSurvivors.ts']) === 0]);
  if (all || flags.has('--datapath')) steps.push(['datapath', () => run(process.execPath, ['--import', 'tsx', 'test/mutation/datapath.ts']) === 0]);
  const failed = steps.filter(([, step]) => !step()).map(([name]) => name);
  console.log(`# pass ${steps.length - failed.length}\n# fail ${failed.length}`);
  if (failed.length) {
    console.error(`[mutation] FAILED: ${failed.join(', ')}`);
    process.exit(1);
  }
}

main();
