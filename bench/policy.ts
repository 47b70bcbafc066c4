/**
 * bench/policy: validate + compile a policy, and render it (Envoy, Corefile, BPF entries), for 1,
 * 100, 1,000 and 10,000 project rules; each size is reported next to the size 10× smaller (the
 * growth ratio: ~10 is linear) and next to a bare YAML parse of the same file (the baseline).
 * Then certificates for 100 domains, next to one bare key generation. Targets: 10,000 rules under
 * 1 s; 100 certificates under 2 s.
 */
import { load } from 'js-yaml';
import { loadProject } from '../src/core/config/load';
import { createCertificateAuthority } from '../src/core/pki/authority';
import { createLeafKey, issueDomainCertificates } from '../src/core/pki/domainCertificate';
import { generateP256KeyPair } from '../src/core/pki/keys';
import { Policy } from '../src/core/policy/policy';
import { renderAll } from '../src/core/render/renderAll';
import { baselineOf, Results } from './lib/results';
import { machine, medianTime } from './lib/timing';

const SIZES = [1, 100, 1000, 10_000];
const TARGET_10K_MS = 1000;
const TARGET_CERTS_MS = 2000;

/** A realistic mix: HTTPS domains (some wildcards, some with path rules), SSH/TCP pins, deny rules. */
function projectFile(rules: number): string {
  const out = ['security:', '  firewall:', '    rules:'];
  for (let i = 0; i < rules; i++) {
    switch (i % 5) {
      case 0:
        out.push(`      - dst: svc${i}.example.com`);
        break;
      case 1:
        out.push(`      - dst: .zone${i}.example.net`);
        break;
      case 2:
        out.push(`      - dst: api${i}.example.org`, '        path_rules:', '          - path: /v1/', '            action: allow', '            methods: [GET, HEAD]', `          - path: "~/repos/(org${i}|other)/?"`, '            action: allow');
        break;
      case 3:
        out.push(`      - dst: git${i}.example.io`, '        proto: ssh', '        port: "22"');
        break;
      default:
        out.push(`      - dst: blocked${i}.zone${i - 3}.example.net`, '        action: deny');
    }
  }
  return `${out.join('\n')}\n`;
}


const rules = (n: number): string => `${n.toLocaleString('en')} rule${n === 1 ? '' : 's'}`;
const results = new Results('policy', 'validate + compile + render a policy; domain certificates');
console.log(`bench/policy — median of runs on ${machine()}`);
console.log('  rules   yaml parse (baseline)   validate+compile           render                      total      growth per 10×');
let previous: { size: number; total: string } | undefined;
let previousTotal: number | undefined;
let total10k = 0;
for (const size of SIZES) {
  const text = projectFile(size);
  const runs = size >= 10_000 ? 3 : 7;
  const loaded = loadProject(text);
  if (loaded.failed) throw new Error(`generated file does not validate: ${loaded.problems[0]?.message}`);
  const baseline = medianTime(() => load(text), runs);
  const compile = medianTime(() => new Policy({ project: loadProject(text).rules }), runs);
  const policy = new Policy({ project: loaded.rules });
  const render = medianTime(() => renderAll(policy, { upstreams: ['1.1.1.2', '1.0.0.2'] }), runs);
  const total = compile + render;
  if (size === 10_000) total10k = total;
  const growth = previousTotal ? `${(total / previousTotal).toFixed(1)}×` : '—';
  const f = { base: `${baseline.toFixed(1)} ms`, compile: `${compile.toFixed(1)} ms`, render: `${render.toFixed(1)} ms`, total: `${total.toFixed(1)} ms` };
  const compileRatio = `${(compile / baseline).toFixed(1)}×`;
  const renderRatio = `${(render / baseline).toFixed(1)}×`;
  console.log(
    `  ${String(size).padStart(6)}  ${f.base.padStart(11)}            ${f.compile.padStart(11)} (${compileRatio} base)   ${f.render.padStart(11)} (${renderRatio} base)   ${f.total.padStart(11)}   ${growth}`,
  );
  const base = baselineOf(f.base, `YAML parse of the same file`);
  results.row(`validate + compile, ${rules(size)}`, f.compile, { baseline: base, ratio: compileRatio });
  results.row(`render (Envoy, Corefile, BPF entries), ${rules(size)}`, f.render, { baseline: base, ratio: renderRatio });
  results.row(
    `total, ${rules(size)}`,
    f.total,
    previous ? { baseline: baselineOf(previous.total, `total, ${rules(previous.size)}`), ratio: growth, note: 'growth per 10× rules: ~10 is linear' } : {},
  );
  previousTotal = total;
  previous = { size, total: f.total };
}
const target10k = `target: 10,000 rules under ${TARGET_10K_MS} ms: ${total10k < TARGET_10K_MS ? 'met' : 'MISSED'} (${total10k.toFixed(0)} ms)`;
console.log(`  ${target10k}`);
results.note(target10k);

const ca = createCertificateAuthority();
const leafKey = createLeafKey();
const domains = Array.from({ length: 100 }, (_, i) => (i % 4 === 0 ? `.wild${i}.example.com` : `svc${i}.example.com`));
const oneKey = medianTime(() => generateP256KeyPair(), 7);
const certs = medianTime(() => issueDomainCertificates(ca, leafKey, domains), 7);
const keyFigure = `${oneKey.toFixed(2)} ms`;
const certFigure = `${certs.toFixed(1)} ms`;
const certRatio = `${(certs / oneKey).toFixed(0)}×`;
console.log(`  one P-256 key pair (baseline) ${keyFigure}; 100 certificates, shared leaf key ${certFigure} (${certRatio} baseline)`);
results.row('100 certificates, shared leaf key', certFigure, { baseline: baselineOf(keyFigure, 'one P-256 key pair'), ratio: certRatio });
const targetCerts = `target: 100 certificates under ${TARGET_CERTS_MS} ms: ${certs < TARGET_CERTS_MS ? 'met' : 'MISSED'}`;
console.log(`  ${targetCerts}`);
results.note(targetCerts);
results.save();
