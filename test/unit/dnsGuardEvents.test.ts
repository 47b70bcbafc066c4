/**
 * DNS exfiltration defences → egress events: the `dnsguard` plugin's refusal lines
 * (images/coredns/plugin/dnsguard) read by fromCorednsLog, first as written lines, then from the
 * real CoreDNS of this checkout serving a rendered Corefile, in its text and JSON log formats, so
 * the plugin's format and the parser are held to each other.
 *
 * Needs Go (the CoreDNS build, as test/unit/corefile.test.ts); without Go this test FAILS.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import * as fs from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import { settingsSchema } from '../../src/core/config/settingsSchema';
import { fromCorednsLog } from '../../src/core/events/corednsLog';
import { type EgressEvent, egressEventSchema } from '../../src/core/events/eventSchema';
import { Policy } from '../../src/core/policy/policy';
import { renderCorefile } from '../../src/core/render/corednsConfig';

const MODULE_DIR = resolve(__dirname, '..', '..', 'images', 'coredns');
const ctx = { wallTime: new Date('2026-01-01T12:00:00Z'), agentOfIp: (ip: string) => (ip === '10.0.0.5' ? { name: 'dev', container: 'c0ffee' } : undefined) };

describe('dnsguard refusal lines (fromCorednsLog)', () => {
  test('each reason becomes a denied DNS event with the query, REFUSED, the agent and its reason word', () => {
    const e = fromCorednsLog('[INFO] plugin/dnsguard: clawker-dns-guard reason=qtype udp 10.0.0.5 40312 TXT x.github.com. REFUSED', ctx);
    assert.deepEqual(e, {
      time: '2026-01-01T12:00:00.000Z',
      source: 'dns',
      verdict: 'denied',
      agent: 'dev',
      container: 'c0ffee',
      domain: 'x.github.com',
      src: { ip: '10.0.0.5', port: 40312 },
      l4: 'udp',
      reason: 'qtype',
      query: { name: 'x.github.com.', type: 'TXT', rcode: 'REFUSED' },
    });
    for (const reason of ['label-length', 'name-length', 'rate'] as const) {
      const ev = fromCorednsLog(`[INFO] plugin/dnsguard: clawker-dns-guard reason=${reason} tcp 10.0.0.7 53000 A ${'a'.repeat(49)}.github.com. REFUSED`, ctx)!;
      assert.equal(ev.reason, reason);
      assert.equal(ev.l4, 'tcp');
      assert.equal(ev.agent, undefined);
      assert.equal(ev.domain, `${'a'.repeat(49)}.github.com`);
      assert.ok(egressEventSchema.safeParse(ev).success);
    }
  });

  test('IPv6 clients, escaped names, the root name, an unassigned type', () => {
    const v6 = fromCorednsLog('clawker-dns-guard reason=rate udp [fd00::5] 1 A github.com. REFUSED', ctx)!;
    assert.deepEqual(v6.src, { ip: 'fd00::5', port: 1 });
    const escaped = fromCorednsLog('clawker-dns-guard reason=qtype udp 10.0.0.5 1 TXT a\\032b\\046c.github.com. REFUSED', ctx)!;
    assert.deepEqual([escaped.domain, escaped.query!.name], ['a\\032b\\046c.github.com', 'a\\032b\\046c.github.com.']);
    const root = fromCorednsLog('clawker-dns-guard reason=qtype udp 10.0.0.5 1 NS . REFUSED', ctx)!;
    assert.deepEqual([root.domain, root.query!.type], ['.', 'NS']);
    assert.equal(fromCorednsLog('clawker-dns-guard reason=qtype udp 10.0.0.5 1 TYPE65280 x. REFUSED', ctx)!.query!.type, 'TYPE65280');
  });

  test("Docker's time stamp and a JSON record give the event its time", () => {
    const line = 'clawker-dns-guard reason=qtype udp 10.0.0.5 40312 TXT github.com. REFUSED';
    assert.equal(fromCorednsLog(`2026-03-04T05:06:07.123456789Z [INFO] plugin/dnsguard: ${line}`, ctx)!.time, '2026-03-04T05:06:07.123Z');
    const json = fromCorednsLog(JSON.stringify({ time: '2026-03-04T05:06:08Z', level: 'INFO', msg: line, plugin: 'dnsguard' }), ctx)!;
    assert.equal(json.time, '2026-03-04T05:06:08.000Z');
    assert.equal(json.reason, 'qtype');
  });

  test('the suppressed-lines count, unknown reasons, other rcodes and malformed lines are not events', () => {
    for (const line of [
      '[INFO] plugin/dnsguard: clawker-dns-guard suppressed=17 client=10.0.0.5',
      '[INFO] plugin/dnsguard: clawker-dns-guard reason=other udp 10.0.0.5 1 TXT github.com. REFUSED',
      '[INFO] plugin/dnsguard: clawker-dns-guard reason=qtype udp 10.0.0.5 1 TXT github.com. NXDOMAIN',
      '[INFO] plugin/dnsguard: clawker-dns-guard reason=qtype udp 10.0.0.5 1 TXT github.com. REFUSED extra',
      '[INFO] plugin/dnsguard: clawker-dns-guard reason=qtype icmp 10.0.0.5 1 TXT github.com. REFUSED',
      '[INFO] plugin/dnsguard: clawker-dns-guard reason=qtype udp not-an-ip 1 TXT github.com. REFUSED',
      '[INFO] plugin/dnsguard: clawker-dns-guard reason=qtype udp 10.0.0.5 1 TXT github.com.',
      '[INFO] plugin/dnsguard: clawker-dns-guard reason=qtype udp 10.0.0.5 99999999 TXT github.com. REFUSED',
    ]) {
      assert.equal(fromCorednsLog(line, ctx), undefined, line);
    }
  });
});

// ---- the real CoreDNS --------------------------------------------------------------------------

const goEnv = { ...process.env, GOFLAGS: [process.env.GOFLAGS, '-mod=readonly', '-buildvcs=false'].filter(Boolean).join(' ') };

function sourceHash(): string {
  const h = createHash('sha256');
  const walk = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if ((entry.name.endsWith('.go') && !entry.name.endsWith('_test.go')) || entry.name === 'go.mod' || entry.name === 'go.sum') {
        h.update(relative(MODULE_DIR, path)).update('\0').update(fs.readFileSync(path)).update('\0');
      }
    }
  };
  walk(MODULE_DIR);
  return h.digest('hex').slice(0, 16);
}

/** The server binary, built once per source version (the same cache directory as test/unit/egressEvents.test.ts). */
async function buildCoredns(): Promise<string> {
  const dir = join(tmpdir(), 'clawker-coredns-server', sourceHash());
  const bin = join(dir, 'coredns-clawker');
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  await new Promise<void>((resolveBuild, reject) =>
    execFile('go', ['build', '-o', tmp, './cmd/coredns-clawker'], { cwd: MODULE_DIR, env: goEnv }, (err, stdout, stderr) =>
      err ? reject(new Error(`go build of ${MODULE_DIR}/cmd/coredns-clawker failed: ${String(err)}\n${stderr}${stdout}`)) : resolveBuild(),
    ),
  );
  fs.renameSync(tmp, bin);
  return bin;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * The Corefile rendered with a small rate (so a short burst trips it), made runnable here: no
 * dnsbpf (it needs the firewall's pinned map), every block on 127.0.0.1 and a free port, and an
 * upstream that answers NXDOMAIN to everything. The dnsguard directives are the renderer's.
 */
function runnableCorefile(port: number, upstreamPort: number, healthPort: number): string {
  const loaded = loadProject('security:\n  firewall:\n    add_domains: [github.com]\n');
  assert.equal(loaded.failed, false);
  const dns = settingsSchema.parse({ firewall: { dns: { query_rate: { per_second: 1, burst: 8 } } } }).firewall.dns;
  const rendered = renderCorefile(new Policy({ project: loaded.rules }), { upstreams: [`127.0.0.1:${upstreamPort}`], dns });
  assert.ok(rendered.includes('        types A AAAA CNAME HTTPS\n        max_label 48\n        max_name 128\n        rate 1 8\n'));
  const runnable = rendered
    .split('\n')
    .filter((l) => !l.trim().startsWith('dnsbpf '))
    .map((l) => l.replace(/^(\S+):53 \{$/, `$1:${port} {\n    bind 127.0.0.1`).replace(/^ {4}health :\d+$/, `    health 127.0.0.1:${healthPort}`))
    .join('\n');
  return `${runnable}\n.:${upstreamPort} {\n    bind 127.0.0.1\n    template ANY ANY {\n        rcode NXDOMAIN\n    }\n}\n`;
}

interface RunningCoredns {
  readonly child: ChildProcess;
  readonly port: number;
  output(): string;
}

async function startCoredns(bin: string, logFormat: 'text' | 'json'): Promise<RunningCoredns> {
  const [port, upstreamPort, healthPort] = [await freePort(), await freePort(), await freePort()];
  const dir = fs.mkdtempSync(join(tmpdir(), 'clawker-dnsguard-events-'));
  const conf = join(dir, 'Corefile');
  fs.writeFileSync(conf, runnableCorefile(port, upstreamPort, healthPort));
  const child = spawn(bin, ['-conf', conf, '-log-format', logFormat], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  child.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const deadline = Date.now() + 15_000;
  while (!/CoreDNS-\d/.test(out)) {
    if (child.exitCode !== null) throw new Error(`CoreDNS exited ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) throw new Error(`CoreDNS did not start in 15 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, port, output: () => out };
}

async function ask(port: number, name: string, type: 'A' | 'TXT' | 'MX'): Promise<string> {
  const resolver = new Resolver({ timeout: 3000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  try {
    await resolver.resolve(name, type);
    return 'ok';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'error';
  }
}

describe('dnsguard refusals from the real CoreDNS serving a rendered Corefile', () => {
  let bin: string;
  const running: RunningCoredns[] = [];
  before(async () => {
    bin = await buildCoredns();
  });
  after(() => running.forEach((r) => r.child.kill('SIGTERM')));

  for (const format of ['text', 'json'] as const) {
    test(`-log-format ${format}: TXT, an over-long label, an over-long name and a burst are REFUSED, each an event with its reason`, async () => {
      const server = await startCoredns(bin, format);
      running.push(server);
      const longLabel = `${'a'.repeat(49)}.github.com`;
      const longName = `${Array.from({ length: 4 }, () => 'b'.repeat(40)).join('.')}.github.com`;
      const codes = [await ask(server.port, 'github.com', 'TXT'), await ask(server.port, 'github.com', 'MX'), await ask(server.port, longLabel, 'A'), await ask(server.port, longName, 'A')];
      assert.deepEqual(codes, ['EREFUSED', 'EREFUSED', 'EREFUSED', 'EREFUSED']);
      // The burst is 8 and the four above took 4: of 8 more, at least 3 are refused for the rate.
      const burst: string[] = [];
      for (let i = 0; i < 8; i++) burst.push(await ask(server.port, 'github.com', 'A'));
      assert.ok(burst.filter((c) => c === 'EREFUSED').length >= 3, burst.join(' '));
      assert.equal(burst[0], 'ENOTFOUND', 'within the burst, the query is forwarded (the stand-in upstream says NXDOMAIN)');

      const events = (): EgressEvent[] =>
        server
          .output()
          .split('\n')
          .map((l) => fromCorednsLog(l, { wallTime: new Date() }))
          .filter((e): e is EgressEvent => e !== undefined && e.query?.rcode === 'REFUSED');
      const deadline = Date.now() + 5000;
      while (events().length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const got = events().map((e) => `${e.reason} ${e.query!.type} ${e.domain}`);
      assert.deepEqual(got.slice(0, 4), ['qtype TXT github.com', 'qtype MX github.com', `label-length A ${longLabel}`, `name-length A ${longName}`], server.output());
      assert.ok(got.slice(4).length >= 1 && got.slice(4).every((g) => g === 'rate A github.com'), server.output());
      for (const e of events()) {
        assert.deepEqual([e.source, e.verdict, e.l4, e.src?.ip], ['dns', 'denied', 'udp', '127.0.0.1']);
        assert.ok(egressEventSchema.safeParse(e).success);
      }
    });
  }
});
