/**
 * The egress event stream: the event schema, the converters from each component's output, the
 * one-line format, the hub that fans events out to API clients, and the JSON-lines log.
 *
 * Kernel events are checked against lines printed by bpfman's own Go code (`Event.JSON()` in
 * images/controlplane/bpfman/datapath), and CoreDNS refusals against the real CoreDNS build
 * (images/coredns) serving a rendered Corefile. Both need Go (go.mod: go 1.26) and the Go module
 * cache or proxy; without Go these tests FAIL, never skip. Envoy cannot run here: its access-log
 * lines are written from Envoy's documented `json_format` output, not captured from Envoy.
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
import {
  type EgressEvent,
  egressEventSchema,
  formatEgressEvent,
  fromCorednsLog,
  fromEnvoyAccessLog,
  fromKernelEvent,
  type KernelEventContext,
} from '../../src/core/events/egressEvent';
import { EventHub } from '../../src/core/events/eventHub';
import { Policy } from '../../src/core/policy/policy';
import { renderCorefile } from '../../src/core/render/corednsConfig';
import { EventLog, egressLogPath } from '../../src/platform/events/eventLog';

const ROOT = resolve(__dirname, '..', '..');
const made: string[] = [];
const tempDir = (prefix: string): string => {
  const dir = fs.mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
};
after(() => made.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

// ---- Go, for bpfman's printer and the CoreDNS build -------------------------------------------

interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<ExecResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && cmd === 'go') {
          reject(new Error('Go is not installed (no `go` on PATH): these tests run bpfman\'s Go event printer and build CoreDNS (images/coredns, go 1.26); install Go and let it reach the Go module proxy once.'));
        } else reject(err);
        return;
      }
      resolvePromise({ code: err ? (err.code as number) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** A hash of a Go module's non-test sources: a changed module is rebuilt, an unchanged one reused. */
function sourceHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if ((entry.name.endsWith('.go') && !entry.name.endsWith('_test.go')) || entry.name === 'go.mod' || entry.name === 'go.sum') {
        h.update(relative(dir, path)).update('\0').update(fs.readFileSync(path)).update('\0');
      }
    }
  };
  walk(dir);
  return h.digest('hex').slice(0, 16);
}

const goEnv = (flags: string): NodeJS.ProcessEnv => ({ ...process.env, GOFLAGS: [process.env.GOFLAGS, flags, '-buildvcs=false'].filter(Boolean).join(' ') });

// ---- the schema --------------------------------------------------------------------------------

describe('the event schema', () => {
  test('a full kernel event and a control-plane note are valid; unknown verdicts, bad addresses and bad times are not', () => {
    const kernel: EgressEvent = {
      time: '2026-01-01T12:00:01.000Z',
      source: 'kernel',
      verdict: 'denied',
      agent: 'dev',
      cgroupId: 1234,
      src: { ip: '10.0.0.5', port: 4431 },
      dst: { ip: '2001:db8::1', port: 443 },
      l4: 'tcp',
      hook: 'connect6',
      reason: 'ipv6',
    };
    assert.ok(egressEventSchema.safeParse(kernel).success);
    assert.ok(egressEventSchema.safeParse({ time: '2026-01-01T12:00:00+02:00', source: 'controlplane', verdict: 'allowed', message: 'bypass for dev ended' }).success);
    for (const bad of [
      { ...kernel, verdict: 'maybe' },
      { ...kernel, source: 'envoy' },
      { ...kernel, time: 'yesterday' },
      { ...kernel, dst: { ip: 'example.com', port: 443 } },
      { ...kernel, dst: { ip: '10.0.0.1', port: 70000 } },
      { ...kernel, reason: 'Not A Word' },
      { ...kernel, cgroupId: -1 },
    ]) {
      assert.equal(egressEventSchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
  });
});

// ---- kernel verdicts ---------------------------------------------------------------------------

const EPOCH = Date.UTC(2026, 0, 1, 12, 0, 0);
const kernelCtx: KernelEventContext = {
  wallTimeOf: (bootNs) => new Date(EPOCH + bootNs / 1e6),
  agentOf: (cgroupId) => (cgroupId === 1234 ? { name: 'dev', container: 'c0ffee' } : undefined),
  domainOf: (key) => (key === '0x00000000deadbeef' ? '.example.org' : undefined),
};

/**
 * Events built in Go and printed by bpfman's own `Event.JSON()`: what `bpfman events` prints for
 * these records (the ring buffer itself needs a loaded datapath; the printing is what we parse).
 */
const GO_PRINTER = `package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"clawker.dev/controlplane/bpfman/datapath"
)

func mapped(a, b, c, d byte) [16]byte { return [16]byte{10: 0xff, 11: 0xff, 12: a, 13: b, 14: c, 15: d} }

func port(p uint16) (out [2]byte) { binary.BigEndian.PutUint16(out[:], p); return }

func main() {
	evs := []datapath.Event{
		// connect4 to another container on the network: denied, reason peer
		{Timestamp: 5_000_000_000, CgroupID: 1234, PID: 42, UID: 1000, Verdict: datapath.VerdictDenied, Hook: 1, Reason: 8, Family: 2, L4: datapath.L4TCP, SockType: 1,
			SrcPort: port(4431), DstPort: port(8080), SrcIP: mapped(10, 0, 0, 5), DstIP: mapped(10, 0, 0, 7)},
		// connect6 from a dual-stack socket to an IPv4-mapped address with a route: redirected to a listener
		{Timestamp: 6_000_000_000, CgroupID: 1234, DomainKey: 0xdeadbeef, Verdict: datapath.VerdictRedirected, Hook: 2, Reason: 3, Family: 10, L4: datapath.L4TCP, SockType: 1,
			SrcPort: port(5000), DstPort: port(443), NewPort: port(10000), SrcIP: mapped(10, 0, 0, 5), DstIP: mapped(203, 0, 113, 9), NewIP: mapped(172, 18, 0, 200)},
		// an ICMP raw socket refused at creation: no addresses
		{Timestamp: 7_000_000_000, CgroupID: 99, Verdict: datapath.VerdictDenied, Hook: 5, Reason: 12, Family: 2, L4: 1, SockType: 3},
		// native IPv6
		{Timestamp: 8_000_000_000, CgroupID: 1234, Verdict: datapath.VerdictDenied, Hook: 2, Reason: 11, Family: 10, L4: datapath.L4UDP, SockType: 2,
			DstPort: port(53), DstIP: [16]byte{0: 0x20, 1: 0x01, 2: 0x0d, 3: 0xb8, 15: 1}},
		// a verdict without a reason (REASON_NONE prints as "0")
		{Timestamp: 9_000_000_000, CgroupID: 1234, Verdict: datapath.VerdictAllowed, Hook: 1, Reason: 0, Family: 2, L4: datapath.L4TCP, SockType: 1,
			SrcPort: port(1), DstPort: port(80), SrcIP: mapped(127, 0, 0, 1), DstIP: mapped(127, 0, 0, 1)},
		// TCP to the host proxy's port on the gateway: allowed unchanged, reason host-proxy (REASON_HOST_PROXY = 17)
		{Timestamp: 10_000_000_000, CgroupID: 1234, PID: 43, UID: 1001, Verdict: datapath.VerdictAllowed, Hook: 1, Reason: 17, Family: 2, L4: datapath.L4TCP, SockType: 1,
			SrcPort: port(40000), DstPort: port(18374), SrcIP: mapped(10, 0, 0, 5), DstIP: mapped(10, 0, 0, 1)},
	}
	for _, ev := range evs {
		b, err := json.Marshal(ev.JSON())
		if err != nil {
			panic(err)
		}
		fmt.Println(string(b))
	}
}
`;

async function goPrintedKernelEvents(): Promise<unknown[]> {
  const bpfman = join(ROOT, 'images', 'controlplane', 'bpfman');
  // The datapath package embeds the compiled object (not committed): build it first, as CI's fresh
  // clone has not run the e2e suite yet.
  const made = await run('make', ['-C', join(ROOT, 'bpf'), '../images/controlplane/bpfman/datapath/bpf/bpf_sock.o'], ROOT, process.env);
  assert.equal(made.code, 0, `make -C bpf (the datapath object bpfman embeds) failed:\n${made.stderr}${made.stdout}`);
  const dir = tempDir('clawker-kernel-events-');
  fs.writeFileSync(join(dir, 'go.mod'), `module eventprinter\n\ngo 1.26.0\n\nrequire clawker.dev/controlplane/bpfman v0.0.0\n\nreplace clawker.dev/controlplane/bpfman => ${bpfman}\n`);
  fs.copyFileSync(join(bpfman, 'go.sum'), join(dir, 'go.sum'));
  fs.writeFileSync(join(dir, 'main.go'), GO_PRINTER);
  const r = await run('go', ['run', '.'], dir, goEnv('-mod=mod'));
  assert.equal(r.code, 0, `go run of the event printer failed:\n${r.stderr}${r.stdout}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown);
}

describe('kernel verdicts (fromKernelEvent), from lines bpfman prints', () => {
  let printed: unknown[];
  before(async () => {
    printed = await goPrintedKernelEvents();
  });

  test('connect4 denied for a peer: denied, with the 4-tuple, the agent, pid/uid, and wall time from the boot clock', () => {
    const e = fromKernelEvent(printed[0], kernelCtx);
    assert.deepEqual(e, {
      time: '2026-01-01T12:00:05.000Z',
      source: 'kernel',
      verdict: 'denied',
      agent: 'dev',
      container: 'c0ffee',
      cgroupId: 1234,
      src: { ip: '10.0.0.5', port: 4431 },
      dst: { ip: '10.0.0.7', port: 8080 },
      l4: 'tcp',
      sockType: 'stream',
      hook: 'connect4',
      reason: 'peer',
      pid: 42,
      uid: 1000,
    });
  });

  test('a redirect on a dual-stack socket: IPv4-mapped addresses shown as IPv4, the domain key named by its rule destination', () => {
    const e = fromKernelEvent(printed[1], kernelCtx)!;
    assert.equal(e.verdict, 'redirected');
    assert.equal(e.reason, 'route');
    assert.equal(e.hook, 'connect6');
    assert.deepEqual(e.src, { ip: '10.0.0.5', port: 5000 });
    assert.deepEqual(e.dst, { ip: '203.0.113.9', port: 443 });
    assert.deepEqual(e.redirect, { ip: '172.18.0.200', port: 10000 });
    assert.equal(e.domain, '.example.org');
  });

  test('a raw ICMP socket refused at creation: no addresses, l4 icmp; an unknown cgroup has no agent', () => {
    const e = fromKernelEvent(printed[2], kernelCtx)!;
    assert.equal(e.verdict, 'denied');
    assert.equal(e.reason, 'socket-type');
    assert.equal(e.hook, 'sock_create');
    assert.equal(e.l4, 'icmp');
    assert.equal(e.sockType, 'raw');
    assert.equal(e.cgroupId, 99);
    for (const absent of ['src', 'dst', 'redirect', 'agent', 'container', 'domain'] as const) assert.equal(e[absent], undefined, absent);
  });

  test('native IPv6 keeps its IPv6 destination and its reason (ipv6: a word with a digit); REASON_NONE gives no reason', () => {
    const ipv6 = fromKernelEvent(printed[3], kernelCtx)!;
    assert.deepEqual(ipv6.dst, { ip: '2001:db8::1', port: 53 });
    assert.equal(ipv6.reason, 'ipv6');
    const none = fromKernelEvent(printed[4], kernelCtx)!;
    assert.equal(none.verdict, 'allowed');
    assert.equal(none.reason, undefined);
  });

  test('TCP to the host proxy on the gateway: allowed, reason host-proxy, no redirect; one line says so', () => {
    const e = fromKernelEvent(printed[5], kernelCtx)!;
    assert.deepEqual(e, {
      time: '2026-01-01T12:00:10.000Z',
      source: 'kernel',
      verdict: 'allowed',
      agent: 'dev',
      container: 'c0ffee',
      cgroupId: 1234,
      src: { ip: '10.0.0.5', port: 40000 },
      dst: { ip: '10.0.0.1', port: 18374 },
      l4: 'tcp',
      sockType: 'stream',
      hook: 'connect4',
      reason: 'host-proxy',
      pid: 43,
      uid: 1001,
    });
    assert.equal(formatEgressEvent(e, { utc: true }), '12:00:10 allowed    dev  tcp 10.0.0.5:40000 → 10.0.0.1:18374 (the host proxy on the gateway; connect4)');
  });

  test('malformed or unknown input is undefined, never an exception', () => {
    const good = printed[0] as Record<string, unknown>;
    const throwing: KernelEventContext = { ...kernelCtx, agentOf: () => { throw new Error('boom'); } };
    for (const raw of [null, undefined, 'denied', 42, [], {}, { ...good, verdict: 'maybe' }, { ...good, verdict: '7' }, { ...good, time: undefined }, { ...good, time: -1 }, { ...good, cgroupId: 'x' }]) {
      assert.equal(fromKernelEvent(raw, kernelCtx), undefined, JSON.stringify(raw));
    }
    assert.equal(fromKernelEvent(good, throwing), undefined);
    assert.equal(fromKernelEvent(good, { ...kernelCtx, wallTimeOf: () => new Date(NaN) }), undefined);
    // An address that is not one is left out rather than failing the event.
    assert.equal(fromKernelEvent({ ...good, dst: 'nonsense' }, kernelCtx)!.dst, undefined);
  });
});

// ---- CoreDNS refusals --------------------------------------------------------------------------

const DNS_POLICY = `
security:
  firewall:
    add_domains: [github.com, .example.org]
    rules:
      - dst: bad.example.org
        action: deny
`;

function dnsPolicy(): Policy {
  const loaded = loadProject(DNS_POLICY);
  assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
  return new Policy({ project: loaded.rules });
}

/** The server blocks of a Corefile, by zone, as lists of trimmed lines. */
function blocks(corefile: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of corefile.matchAll(/^(\S+):\d+ \{\n([\s\S]*?)\n\}$/gm)) out.set(m[1]!, m[2]!.split('\n').map((l) => l.trim()));
  return out;
}

describe('the Corefile logs every refusal with a line the parser reads', () => {
  const zones = blocks(renderCorefile(dnsPolicy(), { upstreams: ['1.1.1.2'] }));
  const logOf = (zone: string): string | undefined => zones.get(zone)?.find((l) => l.startsWith('log . "clawker-dns '));

  test('each block that answers NXDOMAIN logs its denials, saying how it answers its apex and subdomains', () => {
    assert.equal(logOf('.'), 'log . "clawker-dns zone=. apex=no-rule sub=no-rule {proto} {remote} {port} {type} {name} {rcode}" {');
    assert.match(logOf('github.com')!, /zone=github\.com\. apex=forward sub=no-rule /);
    assert.match(logOf('bad.example.org')!, /zone=bad\.example\.org\. apex=deny-rule sub=forward /);
    assert.match(logOf('host.docker.internal')!, /zone=host\.docker\.internal\. apex=forward sub=no-rule /);
    for (const [zone, lines] of zones) {
      if (lines.some((l) => l === 'rcode NXDOMAIN')) {
        assert.ok(logOf(zone), `${zone} answers NXDOMAIN but does not log it`);
        assert.ok(lines.includes('class denial'), zone);
      }
    }
  });

  test('a block that forwards everything refuses nothing and logs nothing', () => {
    assert.ok(zones.get('example.org')!.some((l) => l.startsWith('forward ')));
    assert.equal(logOf('example.org'), undefined);
  });
});

describe('CoreDNS log lines (fromCorednsLog)', () => {
  const wallTime = new Date(EPOCH);
  const ctx = { wallTime, agentOfIp: (ip: string) => (ip === '10.0.0.5' ? { name: 'dev' } : undefined) };

  test('a refusal from the root block: denied, the name, type and rcode, the agent by its address', () => {
    const e = fromCorednsLog('[INFO] clawker-dns zone=. apex=no-rule sub=no-rule udp 10.0.0.5 40312 A blocked.test. NXDOMAIN', ctx);
    assert.deepEqual(e, {
      time: '2026-01-01T12:00:00.000Z',
      source: 'dns',
      verdict: 'denied',
      agent: 'dev',
      domain: 'blocked.test',
      src: { ip: '10.0.0.5', port: 40312 },
      l4: 'udp',
      reason: 'no-rule',
      query: { name: 'blocked.test.', type: 'A', rcode: 'NXDOMAIN' },
    });
  });

  test("an upstream's NXDOMAIN for a forwarded name, NODATA, and lines that are not ours are not events", () => {
    for (const line of [
      '[INFO] clawker-dns zone=github.com. apex=forward sub=no-rule udp 10.0.0.5 1 A github.com. NXDOMAIN',
      '[INFO] clawker-dns zone=bad.example.org. apex=deny-rule sub=forward udp 10.0.0.5 1 A x.bad.example.org. NXDOMAIN',
      '[INFO] clawker-dns zone=github.com. apex=forward sub=no-rule udp 10.0.0.5 1 AAAA github.com. NOERROR',
      '[INFO] clawker-dns zone=github.com. apex=forward sub=no-rule udp 10.0.0.5 1 A gitlab.com. NXDOMAIN',
      '[INFO] clawker-dns zone=. apex=sometimes sub=no-rule udp 10.0.0.5 1 A x. NXDOMAIN',
      '[INFO] [::1]:50759 - 29008 "A IN example.org. udp 41 false 4096" NXDOMAIN qr,rd,ra 68 0.03s',
      '[INFO] plugin/reload: Running configuration SHA512 = 1234',
      '',
      '{"msg": 3}',
      '{not json',
    ]) {
      assert.equal(fromCorednsLog(line, ctx), undefined, line);
    }
  });

  test("Docker's time stamp and JSON records give the event its time", () => {
    const line = 'clawker-dns zone=github.com. apex=forward sub=no-rule tcp 10.0.0.9 5353 TXT api.github.com. NXDOMAIN';
    const stamped = fromCorednsLog(`2026-03-04T05:06:07.123456789Z [INFO] ${line}`, ctx)!;
    assert.equal(stamped.time, '2026-03-04T05:06:07.123Z');
    assert.equal(stamped.reason, 'no-rule');
    assert.equal(stamped.agent, undefined);
    const json = fromCorednsLog(JSON.stringify({ time: '2026-03-04T05:06:08Z', level: 'INFO', msg: line, plugin: 'log' }), ctx)!;
    assert.equal(json.time, '2026-03-04T05:06:08.000Z');
    assert.equal(json.domain, 'api.github.com');
  });
});

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

async function buildCoredns(): Promise<string> {
  const moduleDir = join(ROOT, 'images', 'coredns');
  const dir = join(tmpdir(), 'clawker-coredns-server', sourceHash(moduleDir));
  const bin = join(dir, 'coredns-clawker');
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const r = await run('go', ['build', '-o', tmp, './cmd/coredns-clawker'], moduleDir, goEnv('-mod=readonly'));
  if (r.code !== 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`go build of ${moduleDir}/cmd/coredns-clawker failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  }
  fs.renameSync(tmp, bin); // atomic: a concurrent build by another test process is harmless
  return bin;
}

/**
 * The rendered Corefile, made runnable here: `dnsbpf` lines removed (the plugin refuses to start
 * without the firewall's pinned dns_cache map, and it only records A answers of forwarded names,
 * which are not what this test is about), every block on 127.0.0.1 and a free port, the health
 * endpoint on a free port, and one more server that answers NXDOMAIN to everything, standing in for
 * the upstream resolvers: so an allowed name gets an upstream's NXDOMAIN, logged by its block,
 * which must not become an event. The log lines are the renderer's, untouched.
 */
function runnableCorefile(port: number, upstreamPort: number, healthPort: number): string {
  const rendered = renderCorefile(dnsPolicy(), { upstreams: [`127.0.0.1:${upstreamPort}`] });
  const runnable = rendered
    .split('\n')
    .filter((l) => !l.trim().startsWith('dnsbpf '))
    .map((l) => l.replace(/^(\S+):53 \{$/, `$1:${port} {\n    bind 127.0.0.1`).replace(/^ {4}health :\d+$/, `    health 127.0.0.1:${healthPort}`))
    .join('\n');
  assert.notEqual(runnable, rendered);
  return `${runnable}\n.:${upstreamPort} {\n    bind 127.0.0.1\n    template ANY ANY {\n        rcode NXDOMAIN\n    }\n}\n`;
}

interface RunningCoredns {
  readonly child: ChildProcess;
  readonly port: number;
  output(): string;
}

async function startCoredns(bin: string, logFormat: 'text' | 'json'): Promise<RunningCoredns> {
  const [port, upstreamPort, healthPort] = [await freePort(), await freePort(), await freePort()];
  const conf = join(tempDir('clawker-coredns-events-'), 'Corefile');
  fs.writeFileSync(conf, runnableCorefile(port, upstreamPort, healthPort));
  const child = spawn(bin, ['-conf', conf, '-log-format', logFormat], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`CoreDNS exited ${child.exitCode}:\n${out}${err}\n--- Corefile:\n${fs.readFileSync(conf, 'utf8')}`);
    if (/CoreDNS-\d/.test(out + err)) break;
    if (Date.now() > deadline) throw new Error(`CoreDNS did not start in 15 s:\n${out}${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, port, output: () => out + err };
}

/** Asks each question; the answers themselves are not the point (NXDOMAIN, NODATA or a timeout are all fine). */
async function ask(port: number, questions: readonly [string, 'A' | 'AAAA' | 'TXT'][]): Promise<string[]> {
  const resolver = new Resolver({ timeout: 3000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  const codes: string[] = [];
  for (const [name, type] of questions) {
    try {
      await resolver.resolve(name, type);
      codes.push('ok');
    } catch (e) {
      codes.push((e as NodeJS.ErrnoException).code ?? 'error');
    }
  }
  return codes;
}

async function waitFor(condition: () => boolean, what: () => string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('CoreDNS refusals from the real CoreDNS serving a rendered Corefile', () => {
  let bin: string;
  const running: RunningCoredns[] = [];
  before(async () => {
    bin = await buildCoredns();
  });
  after(() => running.forEach((r) => r.child.kill('SIGTERM')));

  const QUESTIONS: [string, 'A' | 'AAAA' | 'TXT'][] = [
    ['blocked.test', 'A'], // the root block: no rule names it
    ['api.github.com', 'A'], // a subdomain of an exact rule
    ['bad.example.org', 'A'], // a deny rule inside a wildcard
    ['x.host.docker.internal', 'A'], // a subdomain of Docker's exact name
    ['Blocked.TEST', 'TXT'], // case: CoreDNS logs names lower-cased
    ['github.com', 'A'], // allowed: forwarded; the stand-in upstream says NXDOMAIN
    ['github.com', 'AAAA'], // allowed: NODATA from the AAAA template
    ['www.example.org', 'A'], // allowed by the wildcard: its block logs nothing
  ];
  const EXPECTED = [
    { domain: 'blocked.test', type: 'A', reason: 'no-rule' },
    { domain: 'api.github.com', type: 'A', reason: 'no-rule' },
    { domain: 'bad.example.org', type: 'A', reason: 'deny-rule' },
    { domain: 'x.host.docker.internal', type: 'A', reason: 'no-rule' },
    { domain: 'blocked.test', type: 'TXT', reason: 'no-rule' },
  ];

  for (const format of ['text', 'json'] as const) {
    test(`-log-format ${format}: exactly the firewall's refusals become events, with the blocked name, type and rcode`, async () => {
      const server = await startCoredns(bin, format);
      running.push(server);
      const before = Date.now();
      const codes = await ask(server.port, QUESTIONS);
      assert.deepEqual(codes.slice(0, 6), ['ENOTFOUND', 'ENOTFOUND', 'ENOTFOUND', 'ENOTFOUND', 'ENOTFOUND', 'ENOTFOUND'], codes.join(' '));
      const marked = () => server.output().split('\n').filter((l) => l.includes('clawker-dns zone='));
      // Five refusals and the upstream's NXDOMAIN for github.com are logged (NODATA from a template is not a `denial` to CoreDNS).
      await waitFor(() => marked().length >= 6, () => server.output());
      const upstreamNx = marked().find((l) => / A github\.com\. NXDOMAIN/.test(l));
      assert.ok(upstreamNx, `the forwarded name's NXDOMAIN is logged, so dropping it is tested:\n${server.output()}`);
      if (format === 'text') assert.match(upstreamNx, /^\[INFO\] clawker-dns zone=github\.com\. apex=forward sub=no-rule udp 127\.0\.0\.1 \d+ A github\.com\. NXDOMAIN$/);

      const events = server
        .output()
        .split('\n')
        .map((l) => fromCorednsLog(l, { wallTime: new Date() }))
        .filter((e): e is EgressEvent => e !== undefined);
      // CoreDNS logs after the reply is written, so the next query's line can come first: compare as sets.
      const key = (r: { domain?: string; type?: string }) => `${r.domain} ${r.type}`;
      const byKey = <T extends { domain?: string; type?: string }>(rows: T[]) => [...rows].sort((a, b) => key(a).localeCompare(key(b)));
      assert.deepEqual(byKey(events.map((e) => ({ domain: e.domain, type: e.query?.type, reason: e.reason }))), byKey(EXPECTED));
      for (const e of events) {
        assert.equal(e.source, 'dns');
        assert.equal(e.verdict, 'denied');
        assert.equal(e.query!.rcode, 'NXDOMAIN');
        assert.equal(e.query!.name, `${e.domain}.`);
        assert.equal(e.src!.ip, '127.0.0.1');
        assert.equal(e.l4, 'udp');
        assert.ok(Date.parse(e.time) >= before - 2000, e.time);
        assert.ok(egressEventSchema.safeParse(e).success);
      }
    });
  }
});

// ---- Envoy's access log ------------------------------------------------------------------------

/** A line in ACCESS_LOG's json_format: every value a string, unset ones `-` (Envoy's documented output). */
const envoyLine = (fields: Record<string, string>): string =>
  JSON.stringify({
    time: '2026-01-01T12:00:03.250Z',
    listener: '172.18.0.200:10000',
    client: '172.18.0.5:40000',
    sni: '-',
    authority: '-',
    method: '-',
    path: '-',
    status: '0',
    flags: '-',
    details: '-',
    route: '-',
    upstream: '-',
    bytes_sent: '0',
    bytes_received: '0',
    ...fields,
  });

describe("Envoy's access log (fromEnvoyAccessLog)", () => {
  const ctx = { agentOfIp: (ip: string) => (ip === '172.18.0.5' ? { name: 'dev', container: 'c0ffee' } : undefined) };
  const http = (f: Record<string, string>) => envoyLine({ sni: 'api.example.com', authority: 'api.example.com', method: 'GET', path: '/v1/x', ...f });

  test("Envoy's own 403 for a Host no rule allows: denied, with the host, the agent and the request", () => {
    const e = fromEnvoyAccessLog(http({ sni: 'evil.example', authority: 'evil.example', path: '/', status: '403', details: 'direct_response', route: 'deny' }), ctx);
    assert.deepEqual(e, {
      time: '2026-01-01T12:00:03.250Z',
      source: 'proxy',
      verdict: 'denied',
      agent: 'dev',
      container: 'c0ffee',
      domain: 'evil.example',
      src: { ip: '172.18.0.5', port: 40000 },
      l4: 'tcp',
      reason: 'host-denied',
      sni: 'evil.example',
      http: { method: 'GET', authority: 'evil.example', path: '/', status: 403, details: 'direct_response', route: 'deny' },
    });
  });

  test('path rules, path_default and refused paths are denials named by their route', () => {
    const reason = (route: string) => fromEnvoyAccessLog(http({ status: '403', details: 'direct_response', route }))?.reason;
    assert.equal(reason('path-2'), 'path-rule');
    assert.equal(reason('path-default'), 'path-default');
    assert.equal(reason('refused-path'), 'refused-path');
  });

  test("an allowed request is kept as allowed, with the upstream as dst; the server's own 403 is allowed too", () => {
    const ok = fromEnvoyAccessLog(http({ status: '200', details: 'via_upstream', route: 'path-default', upstream: '140.82.112.3:443' }))!;
    assert.equal(ok.verdict, 'allowed');
    assert.equal(ok.reason, undefined);
    assert.deepEqual(ok.dst, { ip: '140.82.112.3', port: 443 });
    const theirs = fromEnvoyAccessLog(http({ status: '403', details: 'via_upstream', route: 'path-default', upstream: '140.82.112.3:443' }))!;
    assert.equal(theirs.verdict, 'allowed');
    // Without response code details, a 403 that reached an upstream is the server's; one that did not is ours.
    assert.equal(fromEnvoyAccessLog(http({ status: '403', details: '-', upstream: '140.82.112.3:443' }))!.verdict, 'allowed');
    assert.equal(fromEnvoyAccessLog(http({ status: '403', details: '-', route: 'deny' }))!.verdict, 'denied');
  });

  test('a TLS connection no filter chain takes (flag NR, an unknown server name) is denied, without HTTP', () => {
    const e = fromEnvoyAccessLog(envoyLine({ sni: 'Unknown.Example', flags: 'NR', details: 'filter_chain_not_found' }), ctx)!;
    assert.equal(e.verdict, 'denied');
    assert.equal(e.reason, 'no-filter-chain');
    assert.equal(e.domain, 'unknown.example');
    assert.equal(e.sni, 'unknown.example');
    assert.equal(e.http, undefined);
    assert.equal(fromEnvoyAccessLog(http({ status: '404', flags: 'NR', details: 'route_not_found' }))!.reason, 'no-route');
  });

  test('a TCP pass-through that could not reach its upstream is allowed, with the failure as its reason', () => {
    const e = fromEnvoyAccessLog(envoyLine({ listener: '172.18.0.200:10001', flags: 'UF,URX' }))!;
    assert.equal(e.verdict, 'allowed');
    assert.equal(e.reason, 'upstream-connect-failed');
    assert.equal(e.http, undefined);
  });

  test('lines that are not access-log lines are undefined', () => {
    for (const line of [
      '',
      'not json',
      '[2026-01-01 12:00:00.000][1][info][main] starting main dispatch loop',
      '[1,2]',
      '{}',
      JSON.stringify({ time: 'later', client: '172.18.0.5:1' }),
      JSON.stringify({ time: '2026-01-01T12:00:00Z', client: '-' }),
      '{"time": "2026-01-01T12:00:00Z", "client": "172.18.0.5:1"',
    ]) {
      assert.equal(fromEnvoyAccessLog(line), undefined, line);
    }
  });
});

// ---- one line for people -----------------------------------------------------------------------

describe('formatEgressEvent', () => {
  test('kernel, DNS, proxy and control-plane events each read as one line', () => {
    const base = { time: '2026-01-01T12:00:01.000Z', agent: 'dev' } as const;
    assert.equal(
      formatEgressEvent({ ...base, source: 'kernel', verdict: 'denied', l4: 'tcp', src: { ip: '10.0.0.5', port: 4431 }, dst: { ip: '203.0.113.9', port: 443 }, hook: 'connect4', reason: 'catch-all' }, { utc: true }),
      '12:00:01 denied     dev  tcp 10.0.0.5:4431 → 203.0.113.9:443 (no route; catch-all; connect4)',
    );
    assert.equal(
      formatEgressEvent({ ...base, source: 'kernel', verdict: 'redirected', l4: 'tcp', dst: { ip: '2001:db8::1', port: 443 }, redirect: { ip: '172.18.0.200', port: 10000 }, domain: '.example.org', reason: 'route' }, { utc: true }),
      '12:00:01 redirected dev  tcp → [2001:db8::1]:443 .example.org ⇒ 172.18.0.200:10000 (a rule, to its listener)',
    );
    assert.equal(
      formatEgressEvent({ ...base, source: 'dns', verdict: 'denied', reason: 'no-rule', query: { name: 'blocked.test.', type: 'A', rcode: 'NXDOMAIN' } }, { utc: true }),
      '12:00:01 denied     dev  dns A blocked.test. NXDOMAIN (no rule names it)',
    );
    assert.equal(
      formatEgressEvent({ ...base, source: 'proxy', verdict: 'denied', reason: 'path-rule', http: { method: 'POST', authority: 'api.example.com', path: '/admin', status: 403 } }, { utc: true }),
      '12:00:01 denied     dev  POST api.example.com/admin → 403 (a path rule)',
    );
    assert.equal(
      formatEgressEvent({ time: base.time, source: 'controlplane', verdict: 'allowed', message: 'bypass for dev ended' }, { utc: true }),
      '12:00:01 allowed    -  bypass for dev ended',
    );
  });
});

// ---- the hub -----------------------------------------------------------------------------------

/** A stream whose buffer is full until `drain()`: what a slow API client looks like from the server. */
class SlowStream {
  writableNeedDrain = true;
  private waiting: (() => void)[] = [];
  once(_event: 'drain', listener: () => void): this {
    this.waiting.push(listener);
    return this;
  }
  drain(): void {
    this.writableNeedDrain = false;
    const w = this.waiting;
    this.waiting = [];
    w.forEach((l) => l());
  }
}

describe('EventHub', () => {
  test('every subscriber gets every event in order; an unsubscribed one gets no more', () => {
    const hub = new EventHub<number>();
    const a: number[] = [];
    const b: number[] = [];
    hub.subscribe((e) => a.push(e));
    const stopB = hub.subscribe((e) => b.push(e));
    hub.publish(1);
    hub.publish(2);
    stopB();
    hub.publish(3);
    assert.deepEqual(a, [1, 2, 3]);
    assert.deepEqual(b, [1, 2]);
    assert.equal(hub.subscriberCount, 1);
  });

  test('a slow subscriber keeps only the newest events, is told how many it lost, and does not hold up the others', () => {
    const hub = new EventHub<number>();
    const fast: number[] = [];
    const slow: [number, number][] = [];
    const stream = new SlowStream();
    hub.subscribe((e) => fast.push(e));
    hub.subscribe((e, dropped) => slow.push([e, dropped]), { bufferSize: 3, stream });
    for (let i = 1; i <= 10; i++) hub.publish(i);
    assert.deepEqual(fast, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(slow, [], 'nothing is written while the stream needs to drain');
    stream.drain();
    assert.deepEqual(slow, [[8, 7], [9, 0], [10, 0]], 'the oldest seven were dropped, and the first delivered event says so');
    hub.publish(11);
    assert.deepEqual(slow.at(-1), [11, 0], 'a drained stream gets events at once');
  });

  test('a stream that fills up again mid-flush waits for its next drain', () => {
    const hub = new EventHub<number>();
    const stream = new SlowStream();
    const got: number[] = [];
    hub.subscribe(
      (e) => {
        got.push(e);
        stream.writableNeedDrain = true; // each write fills the buffer
      },
      { stream },
    );
    [1, 2, 3].forEach((i) => hub.publish(i));
    stream.drain();
    assert.deepEqual(got, [1]);
    stream.drain();
    stream.drain();
    assert.deepEqual(got, [1, 2, 3]);
  });

  test('a listener that throws loses its subscription; the others keep theirs', () => {
    const hub = new EventHub<number>();
    const ok: number[] = [];
    hub.subscribe(() => {
      throw new Error('client gone');
    });
    hub.subscribe((e) => ok.push(e));
    hub.publish(1);
    hub.publish(2);
    assert.deepEqual(ok, [1, 2]);
    assert.equal(hub.subscriberCount, 1);
  });
});

// ---- the log -----------------------------------------------------------------------------------

const note = (i: number): EgressEvent => ({ time: new Date(EPOCH + i * 1000).toISOString(), source: 'controlplane', verdict: 'allowed', message: `event number ${i}` });
const numberOf = (e: EgressEvent): number => Number(/\d+$/.exec(e.message!)![0]);

describe('EventLog', () => {
  test('appends JSON lines under <dataDir>/events, creating the directory, and reads them back', () => {
    const dataDir = tempDir('clawker-events-');
    const log = EventLog.inDataDir(dataDir);
    assert.equal(log.path, egressLogPath(dataDir));
    assert.equal(log.path, join(dataDir, 'events', 'egress.jsonl'));
    assert.deepEqual(log.readTail(10), [], 'no file yet: no events');
    for (let i = 1; i <= 5; i++) assert.equal(log.append(note(i)), true);
    const lines = fs.readFileSync(log.path, 'utf8').split('\n');
    assert.equal(lines.length, 6);
    assert.equal(lines[5], '');
    assert.deepEqual(JSON.parse(lines[0]!), note(1));
    assert.deepEqual(log.readTail(3).map(numberOf), [3, 4, 5]);
    assert.deepEqual(log.readTail(100).map(numberOf), [1, 2, 3, 4, 5]);
    assert.deepEqual(log.readTail(0), []);
    log.close();
  });

  test('rotates before the file would pass its size, keeping one old file; the tail reads across both', () => {
    const dir = tempDir('clawker-events-');
    const path = join(dir, 'egress.jsonl');
    const lineBytes = Buffer.byteLength(`${JSON.stringify(note(10))}\n`); // events 10..99 have equal lines
    const log = new EventLog(path, { maxBytes: lineBytes * 4 + 10 });
    for (let i = 10; i < 14; i++) log.append(note(i));
    assert.equal(fs.statSync(path).size, lineBytes * 4);
    assert.equal(fs.existsSync(`${path}.1`), false, 'four lines fit: no rotation yet');
    log.append(note(14));
    assert.equal(log.stats.rotations, 1);
    assert.deepEqual(fs.readFileSync(`${path}.1`, 'utf8').trim().split('\n').map((l) => numberOf(JSON.parse(l) as EgressEvent)), [10, 11, 12, 13]);
    assert.equal(fs.statSync(path).size, lineBytes);
    assert.deepEqual(log.readTail(3).map(numberOf), [12, 13, 14]);
    for (let i = 15; i < 22; i++) log.append(note(i));
    assert.equal(log.stats.rotations, 2);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['egress.jsonl', 'egress.jsonl.1'], 'only one old file is kept');
    for (const p of [path, `${path}.1`]) assert.ok(fs.statSync(p).size <= lineBytes * 4 + 10, p);
    assert.deepEqual(log.readTail(100).map(numberOf), [14, 15, 16, 17, 18, 19, 20, 21], 'the first file (10..13) is gone');
    log.close();
  });

  test('the default limit is 10 MiB', () => {
    const dir = tempDir('clawker-events-');
    const log = new EventLog(join(dir, 'egress.jsonl'));
    fs.writeFileSync(log.path, `${'x'.repeat(10 * 1024 * 1024 - 200)}\n`);
    log.append(note(1)); // fits
    assert.equal(log.stats.rotations, 0);
    log.append(note(2));
    log.append(note(3)); // would pass 10 MiB
    assert.equal(log.stats.rotations, 1);
    log.close();
  });

  test('malformed lines are skipped when reading; the tail is found across read chunks', () => {
    const dir = tempDir('clawker-events-');
    const log = new EventLog(join(dir, 'egress.jsonl'));
    log.append(note(1));
    fs.appendFileSync(log.path, 'not json\n{"time":"2026-01-01T00:00:00Z","source":"nobody","verdict":"allowed"}\n\n');
    for (let i = 2; i <= 2000; i++) log.append(note(i)); // > 64 KiB: the reader needs several chunks
    fs.appendFileSync(log.path, '{"truncated": '); // a crash mid-line
    const tail = log.readTail(1999);
    assert.equal(tail.length, 1999);
    assert.deepEqual([numberOf(tail[0]!), numberOf(tail.at(-1)!)], [2, 2000]);
    assert.deepEqual(log.readTail(5000).map(numberOf).slice(0, 3), [1, 2, 3]);
    log.close();
  });

  test('a write that fails is reported and counted, never thrown; an invalid event is not written', () => {
    const dir = tempDir('clawker-events-');
    fs.writeFileSync(join(dir, 'events'), 'a file where the directory should be');
    const errors: string[] = [];
    const broken = EventLog.inDataDir(dir, { onError: (e) => errors.push(e.message) });
    assert.equal(broken.append(note(1)), false);
    assert.equal(broken.stats.lost, 1);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /EEXIST|ENOTDIR/);

    const log = new EventLog(join(dir, 'ok.jsonl'), { onError: (e) => errors.push(e.message) });
    assert.equal(log.append({ ...note(1), verdict: 'perhaps' } as unknown as EgressEvent), false);
    assert.match(errors.at(-1)!, /not an egress event: verdict/);
    assert.equal(fs.existsSync(log.path), false);
    const throwingReporter = new EventLog(join(dir, 'events', 'x.jsonl'), {
      onError: () => {
        throw new Error('reporter broke');
      },
    });
    assert.equal(throwingReporter.append(note(1)), false, 'a reporter that throws does not throw into the caller');
  });
});
