/**
 * bench/validate: time to validate a 2,000-rule `.clawker.yaml`, against a bare YAML parse of the
 * same text measured in the same run (the baseline: js-yaml, the parser validation reads values
 * with; the `yaml` Document API, used for positions only when a problem is reported, is shown too).
 * Target: under 50 ms.
 */
import { load } from 'js-yaml';
import { parse } from 'yaml';
import { loadProject } from '../src/core/config/load';
import { baselineOf, Results } from './lib/results';
import { machine, median, time } from './lib/timing';

const RULES = Number(process.env.BENCH_RULES ?? 2000);
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const TARGET_MS = 50;
const WARMUP = 5;

/** A realistic mix: domains, SSH/TCP rules, and HTTPS rules with prefix and regex path rules. */
function generate(rules: number, variant: number): string {
  const out = ['security:', '  firewall:', '    add_domains:'];
  const domains = Math.floor(rules / 4);
  for (let i = 0; i < domains; i++) out.push(`      - svc${i}.example.com`);
  out.push('    rules:');
  for (let i = 0; i < rules - domains; i++) {
    switch (i % 3) {
      case 0:
        out.push(`      - dst: git${i}.example.org`, '        proto: ssh', `        port: "${2000 + (i % 1000)}"`);
        break;
      case 1:
        out.push(`      - dst: .api${i}.example.net`, '        proto: https', '        path_rules:', '          - path: /v1/', '            action: allow', '            methods: [GET, HEAD]', `          - path: "~/repos/(org${i}v${variant}|other)/?"`, '            action: allow', '        path_default: deny');
        break;
      default:
        out.push(`      - dst: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, '        proto: tcp', `        port: "${9000 + (i % 100)}-${9100 + (i % 100)}"`);
    }
  }
  return `${out.join('\n')}\n`;
}


// Each run gets its own file (its regexes differ), so validation never profits from an earlier run:
// "cold" is what opening a file costs. "warm" re-validates the same text, as the editor does while typing.
const texts = Array.from({ length: RUNS + WARMUP }, (_, run) => generate(RULES, run));
const check = loadProject(texts[0]!);
if (check.failed || check.rules.length !== RULES) {
  throw new Error(`the generated file should validate to ${RULES} rules: got ${check.rules.length}, failed=${check.failed}`);
}
const baseline: number[] = [];
const documentApi: number[] = [];
const cold: number[] = [];
const warm: number[] = [];
texts.forEach((text, run) => {
  const b = time(() => load(text));
  const d = time(() => parse(text));
  const c = time(() => loadProject(text));
  const w = time(() => loadProject(text));
  if (run >= WARMUP) {
    baseline.push(b);
    documentApi.push(d);
    cold.push(c);
    warm.push(w);
  }
});
const base = median(baseline);
const results = new Results('validate', `validate a ${RULES}-rule .clawker.yaml`);
const baseFigure = `${base.toFixed(1)} ms`;
const row = (label: string, ms: number): string => {
  const figure = `${ms.toFixed(1)} ms`;
  const ratio = `${(ms / base).toFixed(2)}×`;
  results.row(label, figure, { baseline: baselineOf(baseFigure, 'bare YAML parse, js-yaml'), ratio });
  return `  ${label.padEnd(40)}${figure.padStart(10)}   ${ratio} baseline`;
};
const lines = texts[0]!.split('\n').length;
console.log(`bench/validate — ${RULES} rules, ${lines} lines, median of ${RUNS} runs on ${machine()}`);
console.log(`  ${'bare YAML parse, js-yaml (baseline)'.padEnd(40)}${baseFigure.padStart(10)}`);
console.log(row('bare YAML parse, yaml Document API', median(documentApi)));
console.log(row('clawker validate, new file (cold)', median(cold)));
console.log(row('clawker validate, same file again (warm)', median(warm)));
const target = `target < ${TARGET_MS} ms (cold): ${median(cold) < TARGET_MS ? 'met' : 'MISSED'}`;
console.log(`  ${target}`);
results.note(`${RULES} rules, ${lines} lines, median of ${RUNS} runs`);
results.note(target);
results.save();
