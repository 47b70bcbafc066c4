/**
 * bench/validate: time to validate a 2,000-rule `.clawker.yaml`, against a bare YAML parse of the
 * same text measured in the same run (the baseline: js-yaml, the parser validation reads values
 * with; the `yaml` Document API, used for positions only when a problem is reported, is shown too).
 * Target: under 50 ms.
 */
import { performance } from 'node:perf_hooks';
import { cpus } from 'node:os';
import { load } from 'js-yaml';
import { parse } from 'yaml';
import { loadProject } from '../src/core/config/load';

const RULES = Number(process.env.BENCH_RULES ?? 2000);
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const TARGET_MS = 50;

/** A realistic mix: domains, SSH/TCP rules, and HTTPS rules with prefix and regex path rules. */
function generate(rules: number): string {
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
        out.push(`      - dst: .api${i}.example.net`, '        proto: https', '        path_rules:', '          - path: /v1/', '            action: allow', '            methods: [GET, HEAD]', `          - path: "~/repos/(org${i}|other)/?"`, '            action: allow', '        path_default: deny');
        break;
      default:
        out.push(`      - dst: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, '        proto: tcp', `        port: "${9000 + (i % 100)}-${9100 + (i % 100)}"`);
    }
  }
  return `${out.join('\n')}\n`;
}

function median(fn: () => void): number {
  for (let i = 0; i < 5; i++) fn(); // warm up the JIT
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

const text = generate(RULES);
const check = loadProject(text);
if (check.failed || check.rules.length !== RULES) {
  throw new Error(`the generated file should validate to ${RULES} rules: got ${check.rules.length}, failed=${check.failed}`);
}
const baseline = median(() => load(text));
const documentApi = median(() => parse(text));
const validate = median(() => loadProject(text));
const lines = text.split('\n').length;
console.log(`bench/validate — ${RULES} rules, ${lines} lines, median of ${RUNS} runs on ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores), node ${process.version}`);
console.log(`  bare YAML parse, js-yaml (baseline)   ${baseline.toFixed(1)} ms`);
console.log(`  bare YAML parse, yaml Document API    ${documentApi.toFixed(1)} ms   ${(documentApi / baseline).toFixed(2)}× baseline`);
console.log(`  clawker validate                      ${validate.toFixed(1)} ms   ${(validate / baseline).toFixed(2)}× baseline`);
console.log(`  target < ${TARGET_MS} ms: ${validate < TARGET_MS ? 'met' : 'MISSED'}`);
