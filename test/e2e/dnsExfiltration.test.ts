/**
 * DNS exfiltration defences, end to end, as a user runs them: `clawker firewall up` with the default
 * settings (firewall.dns on), an agent container created as the product creates agents, and the
 * test's own internet resolver as CoreDNS's upstream. From inside the agent: a TXT query for an
 * allowed name, an over-long label under an allowed (wildcard) zone and a burst of queries are
 * REFUSED by CoreDNS's dnsguard, the upstream resolver never sees them, and each refusal arrives as
 * an egress event (`clawker firewall events --json`) with its reason and the agent.
 *
 * Each check would fail with the defences off (`firewall.dns.enable: false`): the TXT query and the
 * long label are forwarded (the resolver sees them) and the burst is answered in full.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { agentContainerSpec, DEFAULT_PROJECT_SETTINGS } from '../../src/core/stack/agentSpec';
import { agentsCgroupParent } from '../../src/core/stack/cgroupPaths';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { stackNames } from '../../src/core/stack/stackNames';
import { ensurePythonImage, PY_IMAGE } from './datapath-testbed';
import { ensureEnvoyStandinImage, TestInternet } from './internet';
import { ensureStackImages } from './stackImages';
import { BPFFS_DIR, clawker, type ClawkerResult, E2E_PID_LABEL, pollUntil, removeCgroupDirs, requireTestbed, ROOT, run, runOk, testStackEnv, removeStackVolumes } from './testbed';

const names = stackNames(`clawker-e2e-dnsx-${process.pid}`);
const pinDir = join(BPFFS_DIR, names.prefix);
const dataDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-dnsx-data-'));
const scriptsDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-dnsx-agent-'));
const settings = join(dataDir, 'settings.yaml');
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const inet = new TestInternet();
let images: { coredns: string; controlplane: string; envoy: string };
let status: Status;
let agentName = '';

/**
 * The agent's DNS client: raw queries of any type to a server, one at a time (`ask`) or a burst
 * sent all at once and then collected (`burst`), printing one JSON line.
 */
const DNS_PY = String.raw`
import json, random, socket, struct, sys, time

TYPES = {"A": 1, "TXT": 16, "MX": 15, "NULL": 10, "ANY": 255, "AAAA": 28}

def query(name, qtype, qid):
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", TYPES[qtype], 1)

def ask(server, name, qtype):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    qid = random.randrange(1, 65535)
    s.sendto(query(name, qtype, qid), (server, 53))
    try:
        while True:
            data, _ = s.recvfrom(4096)
            if struct.unpack("!H", data[:2])[0] == qid:
                return {"rcode": data[3] & 0x0F, "answers": struct.unpack("!H", data[6:8])[0]}
    except socket.timeout:
        return {"rcode": None, "error": "timeout"}

def burst(server, name, n, wave=50):
    # Waves of 50, each collected before the next is sent: all at once, the replies overflow the
    # socket's receive buffer and are lost; a wave takes milliseconds, so the whole is still a burst.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    rcodes, answered = {}, 0
    t0 = time.monotonic()
    for start in range(0, n, wave):
        pending = set(range(start + 1, min(n, start + wave) + 1))
        for qid in sorted(pending):
            s.sendto(query(name, "A", qid), (server, 53))
        try:
            while pending:
                data, _ = s.recvfrom(4096)
                qid = struct.unpack("!H", data[:2])[0]
                if qid not in pending:
                    continue
                pending.discard(qid)
                answered += 1
                rc = str(data[3] & 0x0F)
                rcodes[rc] = rcodes.get(rc, 0) + 1
        except socket.timeout:
            pass
    return {"rcodes": rcodes, "answered": answered, "seconds": time.monotonic() - t0}

cmd = sys.argv[1]
if cmd == "ask":
    print(json.dumps(ask(sys.argv[2], sys.argv[3], sys.argv[4])))
elif cmd == "burst":
    print(json.dumps(burst(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
`;

const RCODE = { NOERROR: 0, NXDOMAIN: 3, REFUSED: 5 } as const;

function env(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...testStackEnv({ dataDir, stack: names.prefix, pinDir, settings, images }),
    CLAWKER_DRAIN_AFTER_MS: '600000',
    CLAWKER_HEAL_AFTER_MS: '6000',
  };
}

const cli = (...args: string[]): Promise<ClawkerResult> => clawker(args, { env: env() });

async function cliOk(...args: string[]): Promise<string> {
  const r = await cli(...args);
  assert.equal(r.code, 0, `clawker ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function agentDns(...args: string[]): Promise<Record<string, unknown>> {
  const r = await run('docker', ['exec', agentName, 'python3', '/agent/dns.py', ...args], 30_000);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(`agent dns.py ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
  }
}

const ask = (name: string, type: string) => agentDns('ask', status.network.coredns, name, type);

const waitUntil = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 200): Promise<T> => pollUntil(what, fn, timeoutMs, everyMs);

async function dnsEvents(): Promise<Record<string, unknown>[]> {
  const out = await cliOk('firewall', 'events', '--json', '--tail', '5000');
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e.source === 'dns');
}

async function waitForEvent(what: string, match: (e: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  let seen: Record<string, unknown>[] = [];
  try {
    return await waitUntil(what, async () => {
      seen = await dnsEvents();
      return seen.find(match);
    });
  } catch (e) {
    throw new Error(`${String(e)}\nDNS events so far: ${JSON.stringify(seen.slice(-20), null, 1)}`);
  }
}

const upstreamSaw = async (pred: (q: { name: string; type: string }) => boolean) => (await inet.queries()).filter(pred);

describe('DNS exfiltration defences, end to end (firewall up with default settings, a real agent container)', { timeout: 900_000 }, () => {
  before(async () => {
    await requireTestbed();
    await runOk('node', [join(ROOT, 'scripts', 'build.mjs')], 120_000);
    const [stack, envoy] = await Promise.all([ensureStackImages(), ensureEnvoyStandinImage(), ensurePythonImage()]);
    images = { ...stack, envoy };
    writeFileSync(join(scriptsDir, 'dns.py'), DNS_PY);
    await inet.start({});
    inet.setZone({ 'allowed.test': 10, 'wild.test': 11, '*.wild.test': 11 });
    // The default firewall.dns: only the upstream is the test's.
    writeFileSync(settings, `firewall:\n  upstream_dns:\n    - ${inet.dnsIp}\n`);
    await cliOk('firewall', 'add', 'allowed.test');
    await cliOk('firewall', 'add', '.wild.test');
    const up = await cli('firewall', 'up', '--json');
    assert.equal(up.code, 0, `firewall up failed:\n${up.stderr}\n${up.stdout}`);
    status = JSON.parse(up.stdout) as Status;
    await inet.routeFrom(status.network.subnet);
    const { name, create } = agentContainerSpec({
      stack: names,
      project: 'e2e',
      agent: 'dev',
      image: PY_IMAGE,
      cmd: ['sleep', 'infinity'],
      workspace: scriptsDir,
      settings: { ...DEFAULT_PROJECT_SETTINGS, enableHostProxy: false },
      firewall: { enabled: true, corednsIp: status.network.coredns, cgroupParent: agentsCgroupParent('cgroupfs', names.agentsCgroup) },
      supervised: false,
      extraLabels: { [E2E_PID_LABEL]: String(process.pid) },
    });
    const container = await docker.createContainer({ name, ...create, HostConfig: { ...create.HostConfig, Binds: [`${scriptsDir}:/agent:ro`] } });
    await container.start();
    agentName = name;
    await waitUntil('agent enrolled', async () => {
      const s = JSON.parse((await cli('firewall', 'status', '--json')).stdout) as Status;
      return s.agents.find((a) => a.agent === 'dev' && a.state === 'enrolled') ? true : undefined;
    });
  });

  after(async () => {
    await cli('firewall', 'down');
    if (agentName) await run('docker', ['rm', '-f', agentName]);
    for (const n of [names.controlplane, names.envoy, names.coredns]) await run('docker', ['rm', '-f', n]);
    await run('docker', ['network', 'rm', names.network]);
    await removeStackVolumes(names);
    await inet.stop();
    rmSync(pinDir, { recursive: true, force: true });
    await removeCgroupDirs(names.agentsCgroup);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(scriptsDir, { recursive: true, force: true });
  });

  test('the allowed names still resolve through the guard (A, and a 48-octet label: the cap)', async () => {
    const a = await ask('allowed.test', 'A');
    assert.deepEqual(a, { rcode: RCODE.NOERROR, answers: 1 });
    const atCap = `${'c'.repeat(48)}.wild.test`;
    assert.equal((await ask(atCap, 'A')).rcode, RCODE.NOERROR);
    assert.equal((await upstreamSaw((q) => q.name.replace(/\.$/, '') === atCap && q.type === 'A')).length, 1, 'a name at the cap is forwarded');
  });

  test('a TXT query for an allowed name is REFUSED, never forwarded, and reported as a `qtype` event', async () => {
    for (const type of ['TXT', 'NULL', 'MX']) {
      const r = await ask('allowed.test', type);
      assert.equal(r.rcode, RCODE.REFUSED, `${type} allowed.test: ${JSON.stringify(r)}`);
    }
    await sleep(500);
    assert.deepEqual(await upstreamSaw((q) => q.type !== 'A' && q.name.startsWith('allowed.test')), [], 'the upstream resolver saw none of them');
    const e = await waitForEvent('a qtype refusal event', (x) => x.reason === 'qtype' && (x.query as { type?: string })?.type === 'TXT' && x.domain === 'allowed.test');
    assert.equal(e.verdict, 'denied');
    assert.equal(e.agent, 'dev', JSON.stringify(e));
    assert.deepEqual(e.query, { name: 'allowed.test.', type: 'TXT', rcode: 'REFUSED' });
  });

  test('an over-long label under an allowed wildcard zone is REFUSED, never forwarded, and reported as `label-length`', async () => {
    const secret = Buffer.from('ssh-rsa AAAAB3NzaC1yc2E secret key bytes!').toString('hex').slice(0, 60);
    const name = `${secret}.wild.test`;
    const r = await ask(name, 'A');
    assert.equal(r.rcode, RCODE.REFUSED, JSON.stringify(r));
    await sleep(500);
    assert.deepEqual(await upstreamSaw((q) => q.name.includes(secret)), [], 'the upstream resolver never saw the label');
    const e = await waitForEvent('a label-length refusal event', (x) => x.reason === 'label-length' && x.domain === name);
    assert.equal(e.agent, 'dev', JSON.stringify(e));
  });

  test('a burst of 400 queries: the first ~100 (the burst) are answered, the rest REFUSED for `rate`, and the upstream sees only the answered ones', async () => {
    await sleep(2500); // the bucket (50 a second, burst 100) refills after the queries above
    const before = (await upstreamSaw((q) => q.name.replace(/\.$/, '') === 'allowed.test' && q.type === 'A')).length;
    const r = (await agentDns('burst', status.network.coredns, 'allowed.test', '400')) as { rcodes: Record<string, number>; answered: number; seconds: number };
    const refused = r.rcodes[String(RCODE.REFUSED)] ?? 0;
    const ok = r.rcodes[String(RCODE.NOERROR)] ?? 0;
    process.stdout.write(`# burst of 400 from the agent: ${JSON.stringify(r)}\n`);
    assert.ok(r.answered >= 390, `(nearly) every query answered: ${JSON.stringify(r)}`);
    // The bucket holds 100 and earns 50 a second back while the burst runs.
    const earned = Math.ceil(r.seconds * 50);
    assert.ok(ok >= 100 && ok <= 100 + earned + 2, `the burst and what it earned back answered, no more: ${JSON.stringify(r)}`);
    assert.ok(refused >= r.answered - 100 - earned - 2 && refused >= 200, `the rest refused: ${JSON.stringify(r)}`);
    await sleep(1000);
    const forwarded = (await upstreamSaw((q) => q.name.replace(/\.$/, '') === 'allowed.test' && q.type === 'A')).length - before;
    assert.equal(forwarded, ok, `the upstream saw exactly the answered queries (${ok}), not the ${refused} refused ones`);
    const e = await waitForEvent('a rate refusal event', (x) => x.reason === 'rate' && x.domain === 'allowed.test');
    assert.equal(e.agent, 'dev', JSON.stringify(e));
    // The refusal log is itself rate limited: a flood of 300 refusals is not 300 events.
    const rateEvents = (await dnsEvents()).filter((x) => x.reason === 'rate');
    assert.ok(rateEvents.length < refused / 2, `${rateEvents.length} rate events for ${refused} refusals`);
  });
});
