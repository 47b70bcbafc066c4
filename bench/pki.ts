/**
 * bench/pki: time to issue the domain certificates for 100 https/wss destinations (exact names,
 * wildcards, IPv4) with the shared leaf key, against generating ONE P-256 key pair with Node's crypto
 * measured in the same run (the baseline). Issuing with a fresh key per certificate, which sharing the
 * leaf key avoids, creating the CA, and the bare ECDSA signatures (the floor: what is left once
 * DER encoding costs nothing) are shown too. Target: 100 certificates under 2 s.
 */
import { randomBytes, sign } from 'node:crypto';
import { createCertificateAuthority } from '../src/core/pki/authority';
import { createLeafKey, issueDomainCertificate, issueDomainCertificates } from '../src/core/pki/domainCertificate';
import { generateP256KeyPair } from '../src/core/pki/keys';
import { baselineOf, Results } from './lib/results';
import { machine, median, time } from './lib/timing';

const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 100);
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const TARGET_MS = 2000;
const WARMUP = 3;

function destinations(count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    switch (i % 4) {
      case 0:
        return `.svc${i}.example.com`;
      case 1:
        return `api${i}.example.org`;
      case 2:
        return `10.${(i >> 8) & 255}.${i & 255}.1`;
      default:
        return `registry${i}.example.net`;
    }
  });
}


const list = destinations(DOMAINS);
const ca = createCertificateAuthority();
const leafKey = createLeafKey();
const check = issueDomainCertificates(ca, leafKey, list);
if (check.size !== DOMAINS) throw new Error(`expected ${DOMAINS} certificates, got ${check.size}`);

const baseline: number[] = [];
const createCa: number[] = [];
const shared: number[] = [];
const freshKeys: number[] = [];
const signaturesOnly: number[] = [];
const tbsSized = randomBytes(400); // about the size of a domain certificate's TBSCertificate
for (let run = 0; run < RUNS + WARMUP; run++) {
  const b = time(() => generateP256KeyPair());
  const c = time(() => createCertificateAuthority());
  const s = time(() => issueDomainCertificates(ca, leafKey, list));
  const f = time(() => list.forEach((destination) => issueDomainCertificate(ca, generateP256KeyPair(), destination)));
  const g = time(() => list.forEach(() => sign('sha256', tbsSized, ca.privateKey)));
  if (run >= WARMUP) {
    baseline.push(b);
    createCa.push(c);
    shared.push(s);
    freshKeys.push(f);
    signaturesOnly.push(g);
  }
}
const base = median(baseline);
const results = new Results('pki', `domain certificates for ${DOMAINS} destinations`);
const baseFigure = `${base.toFixed(2)} ms`;
const row = (label: string, ms: number): string => {
  const figure = `${ms.toFixed(2)} ms`;
  const ratio = `${(ms / base).toFixed(1)}×`;
  results.row(label, figure, { baseline: baselineOf(baseFigure, 'one P-256 key pair, Node crypto'), ratio });
  return `  ${label.padEnd(52)}${figure.padStart(11)}   ${ratio} baseline`;
};
console.log(`bench/pki — ${DOMAINS} destinations, median of ${RUNS} runs on ${machine()}`);
console.log(`  ${'one P-256 key pair, Node crypto (baseline)'.padEnd(52)}${baseFigure.padStart(11)}`);
console.log(row('create the CA (key pair + self-signed certificate)', median(createCa)));
console.log(row(`${DOMAINS} bare ECDSA-SHA256 signatures (the floor)`, median(signaturesOnly)));
console.log(row(`issue ${DOMAINS} certificates, shared leaf key`, median(shared)));
console.log(row(`issue ${DOMAINS} certificates, a fresh key each`, median(freshKeys)));
const perCertificate = `per certificate, shared leaf key: ${((median(shared) / DOMAINS) * 1000).toFixed(0)} µs`;
const target = `target < ${TARGET_MS} ms for ${DOMAINS} certificates: ${median(shared) < TARGET_MS ? 'met' : 'MISSED'}`;
console.log(`  ${perCertificate}`);
console.log(`  ${target}`);
results.note(perCertificate);
results.note(target);
results.save();
