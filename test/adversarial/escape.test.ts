/**
 * The red-team suite: an agent that wants out. Every scenario runs as root inside a real agent
 * container, enrolled by the real control plane (`clawker firewall up`), against a test internet whose
 * resolver and origins record every query and connection. Each test fails if the attack got through
 * (a trace at an origin, the resolver, a listener) and says how it was refused (EPERM at once, an
 * answer from CoreDNS, the proxy's catch-all, the kernel's event with its reason).
 *
 * NOT COVERED HERE (see NOT_COVERED below): DNS exfiltration (another suite builds those defences).
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostListener } from '../e2e/datapath-testbed';
import { run, runOk } from '../e2e/testbed';
import { AdversarialStack, type LoggedEvent, waitUntil } from './stack';

/**
 * Attacks this suite does not make, so nobody reads its green as covering them.
 * DNS exfiltration belongs to the DNS-exfiltration suite (issue 7, part 2).
 */
export const NOT_COVERED = [
  'DNS exfiltration: data in query names/labels of allowed or refused domains (long labels, many unique subdomains, TXT/NULL answers)',
  'DNS exfiltration through CoreDNS to an allowed domain the attacker controls (a wildcard rule)',
  'an allowed domain whose DNS answer the attacker controls (rebinding to internal or other addresses)',
  'HTTP CONNECT / Host-header tricks against a real Envoy (the proxy here is the stand-in: Envoy cannot run on the test bed)',
  'timing and covert channels (connection timing to allowed hosts, SNI of allowed names carrying data)',
] as const;

const stack = new AdversarialStack();
const inet = stack.inet;
/** Hosts of the test internet (host numbers on its network). */
const HOST = { allowed: 10, elsewhere: 30, ttl: 70 } as const;
const TCP_RULE_PORT = 7000;
const TTL_RULE_PORT = 7100;
/** The test resolver's TTL (DNS_PY) plus dnsbpf's ExpiryGrace (images/coredns/plugin/dnsbpf/mapwriter.go). */
const TTL_EXPIRY_MS = (30 + 5) * 1000;
/** The control plane's per-agent event bucket (bpfman's default for an enrolled container). */
const EVENTS = { rate: 100, burst: 200 } as const;

let dev = '';
let ttlResolvedAt = 0;

const agent = (...args: string[]) => stack.exec(dev, 'agent.py', ...args);
const attack = (...args: string[]) => stack.exec(dev, 'attack.py', ...args);
const ip = (host: number) => inet.address(host);

/** The kernel's record of a decision for dev towards dst (IPv4 written plainly). */
async function kernelEvent(dstIp: string, port: number, verdict: string, since = 0): Promise<LoggedEvent> {
  const match = (e: LoggedEvent) => e.source === 'kernel' && e.agent === 'dev' && e.verdict === verdict && e.dst?.ip === dstIp && e.dst.port === port;
  try {
    return await waitUntil(`a kernel ${verdict} event for ${dstIp}:${port}`, async () => (await stack.events()).slice(since).find(match), 10_000);
  } catch (e) {
    const recent = (await stack.events()).filter((x) => x.source === 'kernel').slice(-8);
    throw new Error(`${(e as Error).message}; the last kernel events:\n${recent.map((x) => JSON.stringify(x)).join('\n')}`);
  }
}

const ORIGINS = ['allowed', 'elsewhere', 'ttl'] as const;

/** How much the internet had recorded when the current test started: each test answers for its own attacks. */
let mark = { connections: {} as Record<string, number>, queries: 0 };

async function markInternet(): Promise<void> {
  const connections: Record<string, number> = {};
  for (const origin of ORIGINS) connections[origin] = (await inet.connections(origin)).length;
  mark = { connections, queries: (await inet.queries()).length };
}

/**
 * Since the test started, no origin of the test internet saw a connection and the resolver heard
 * no one but CoreDNS. (`everSince0`: since the suite started.) Origins log a connection once the
 * client spoke or 0.3 s passed, hence the pause.
 */
async function assertNothingReachedTheInternet(everSince0 = false): Promise<void> {
  await sleep(400);
  for (const origin of ORIGINS) {
    const seen = (await inet.connections(origin)).slice(everSince0 ? 0 : mark.connections[origin]);
    assert.deepEqual(seen, [], `origin ${origin} was reached`);
  }
  const fromAgents = (await inet.queries()).slice(everSince0 ? 0 : mark.queries).filter((q) => q.peer !== stack.status.network.coredns);
  assert.deepEqual(fromAgents, [], 'the resolver was asked by someone other than CoreDNS');
}

function expectEperm(r: Record<string, unknown>, what: string): void {
  assert.equal(r.errno, 'EPERM', `${what}: ${JSON.stringify(r)}`);
  if (typeof r.seconds === 'number') assert.ok(r.seconds < 0.5, `${what}: refused at once, not timed out (${r.seconds} s)`);
}

describe('red team: an agent tries to get out (real control plane, eBPF, CoreDNS, proxy stand-in)', { timeout: 600_000 }, () => {
  before(async () => {
    await stack.prepare();
    // The outside resolver answers blocked names (NOERROR): an NXDOMAIN can only be CoreDNS's.
    inet.setZone({ 'allowed.test': HOST.allowed, 'blocked.test': HOST.elsewhere, '*.blocked.test': HOST.elsewhere, 'ttl.test': HOST.ttl });
    await inet.startOrigin('allowed', ip(HOST.allowed), [443, TCP_RULE_PORT]);
    // Whatever an attacker would want to reach: an ssh, web, DoH/DoT server at an address no rule names.
    await inet.startOrigin('elsewhere', ip(HOST.elsewhere), [22, 80, 443, 853, TCP_RULE_PORT]);
    await inet.startOrigin('ttl', ip(HOST.ttl), [TTL_RULE_PORT]);
    await stack.cliOk('firewall', 'add', 'allowed.test');
    await stack.cliOk('firewall', 'add', 'allowed.test', '--proto', 'tcp', '--port', String(TCP_RULE_PORT));
    await stack.cliOk('firewall', 'add', 'ttl.test', '--proto', 'tcp', '--port', String(TTL_RULE_PORT));
    await stack.up();
    dev = await stack.startAgent('dev');
    // The stale-cache scenario (last) waits for this entry to expire; started now, it costs little.
    const ttl = await agent('resolve', 'ttl.test');
    ttlResolvedAt = Date.now();
    assert.deepEqual(ttl.addresses, [ip(HOST.ttl)], JSON.stringify(ttl));
    // While fresh, the entry routes: the stale-cache scenario's catch-all is then the expiry's doing.
    const n = (await stack.proxyConnections()).length;
    await agent('tcp', ip(HOST.ttl), String(TTL_RULE_PORT));
    const [fresh] = await stack.proxyConnectionsAfter(n);
    const dedicated = Object.entries(await stack.listenerPorts()).find(([k]) => k.includes('ttl.test'))?.[1];
    assert.equal(fresh!.port, dedicated, `a fresh entry routes to ttl.test's listener: ${JSON.stringify(fresh)}`);
  });

  beforeEach(markInternet);

  after(async () => {
    await stack.teardown();
  });

  test("DNS to an outside resolver (UDP, TCP 53) or Docker's embedded one is answered by CoreDNS; the resolver never hears the agent", async () => {
    const udp = await agent('dns', inet.dnsIp, 'exfil-udp.blocked.test');
    assert.equal(udp.rcode, 3, `UDP: CoreDNS's NXDOMAIN, not the outside resolver's answer: ${JSON.stringify(udp)}`);
    const tcp = await agent('dns', inet.dnsIp, 'exfil-tcp.blocked.test', '--tcp');
    assert.equal(tcp.rcode, 3, `TCP: ${JSON.stringify(tcp)}`);
    const docker = await agent('dns', '127.0.0.11', 'exfil-docker.blocked.test');
    assert.equal(docker.rcode, 3, `Docker's embedded resolver: CoreDNS answers in its place: ${JSON.stringify(docker)}`);
    expectEperm(await agent('udp', '127.0.0.11', '5353'), "Docker's embedded resolver off port 53");
    const ev = await kernelEvent(inet.dnsIp, 53, 'redirected');
    assert.equal(ev.reason, 'dns');
    assert.deepEqual(ev.redirect, { ip: stack.status.network.coredns, port: 53 });
    const asked = (await inet.queries()).filter((q) => q.name.includes('exfil-'));
    assert.deepEqual(asked, [], 'the refused names were never forwarded');
    await assertNothingReachedTheInternet();
  });

  test('DNS-over-TLS (853) and DNS-over-HTTPS (443) to IP literals land on the proxy catch-all and are reset', async () => {
    const n = (await stack.proxyConnections()).length;
    const attempts = [
      [inet.dnsIp, '853', 'dns.resolver.example'],
      [ip(HOST.elsewhere), '853', 'dot.resolver.example'],
      [ip(HOST.elsewhere), '443', 'doh.resolver.example'],
    ] as const;
    const results = [];
    for (const [host, port, sni] of attempts) results.push(await agent('tls', host, port, sni));
    const seen = await stack.proxyConnectionsAfter(n, attempts.length);
    for (const [i, [, , sni]] of attempts.entries()) {
      assert.equal(results[i]!.ok, false, `${sni}: the handshake failed (${JSON.stringify(results[i])})`);
      const rec = seen.find((r) => r.sni === sni);
      assert.ok(rec, `${sni} reached the proxy: ${JSON.stringify(seen)}`);
      assert.equal(rec.port, 10000, `${sni}: the catch-all listener`);
      assert.equal(rec.verdict, 'reset', `${sni}: no chain serves it (${JSON.stringify(rec)})`);
    }
    assert.equal((await kernelEvent(ip(HOST.elsewhere), 853, 'redirected')).reason, 'catch-all');
    await assertNothingReachedTheInternet();
  });

  test('TCP to never-resolved IP literals (ssh, http, https) lands on the catch-all; the address is never reached', async () => {
    const n = (await stack.proxyConnections()).length;
    const https = await agent('tls', ip(HOST.elsewhere), '443', 'elsewhere.example');
    const http = await attack('http', ip(HOST.elsewhere), '80', 'elsewhere.example');
    const seen = await stack.proxyConnectionsAfter(n, 2);
    assert.equal(https.ok, false, JSON.stringify(https));
    assert.ok(!String(http.body ?? '').includes('origin-elsewhere'), `the origin answered HTTP: ${JSON.stringify(http)}`);
    for (const r of seen) assert.equal(r.port, 10000, `catch-all: ${JSON.stringify(r)}`);
    assert.equal(seen.find((r) => r.sni === 'elsewhere.example')?.verdict, 'reset', `HTTPS: no chain for the SNI: ${JSON.stringify(seen)}`);
    assert.equal(seen.find((r) => r.transport === 'raw_buffer')?.status, 403, `HTTP: the proxy's 403 for an unlisted Host: ${JSON.stringify(seen)}`);
    assert.match(String(http.status), /^HTTP\/1\.1 403/, JSON.stringify(http));
    const ssh = await agent('tcp', ip(HOST.elsewhere), '22');
    assert.notEqual(ssh.banner, 'origin-elsewhere:22', `ssh reached the origin: ${JSON.stringify(ssh)}`);
    assert.equal((await kernelEvent(ip(HOST.elsewhere), 22, 'redirected')).reason, 'catch-all');
    await assertNothingReachedTheInternet();
  });

  test('IPv6: native addresses refused at once (TCP and UDP); IPv4-mapped addresses take the IPv4 path to the proxy', async () => {
    expectEperm(await agent('tcp', '2001:db8::1', '443'), 'TCP to native IPv6');
    expectEperm(await agent('udp', '2001:db8::1', '443'), 'UDP to native IPv6');
    expectEperm(await attack('udpconnect', '2001:db8::1', '443'), 'connected UDP to native IPv6');
    const n = (await stack.proxyConnections()).length;
    const mapped = await agent('tls', `::ffff:${ip(HOST.elsewhere)}`, '443', 'mapped.example');
    const [seen] = await stack.proxyConnectionsAfter(n);
    assert.equal(seen!.port, 10000, `IPv4-mapped routed like IPv4: ${JSON.stringify(seen)} (agent: ${JSON.stringify(mapped)})`);
    assert.equal(seen!.verdict, 'reset');
    expectEperm(await agent('udp', `::ffff:${ip(HOST.elsewhere)}`, '443'), 'UDP to an IPv4-mapped literal');
    const refused = await kernelEvent('2001:db8::1', 443, 'denied');
    assert.equal(refused.hook, 'connect6');
    assert.equal(refused.reason, 'ipv6');
    await assertNothingReachedTheInternet();
  });

  test('raw, packet and ICMP sockets cannot be created, even as root', async () => {
    const inetSockets = await agent('sockets');
    assert.deepEqual(inetSockets, { raw4: 'EPERM', icmp4: 'EPERM', raw6: 'EPERM', tcp4: 'ok' });
    const other = await attack('packet');
    assert.deepEqual(other, { packet_raw: 'EPERM', packet_dgram: 'EPERM', icmp6: 'EPERM', raw_ip: 'EPERM', raw_udp: 'EPERM' });
    const ev = await waitUntil('a kernel socket-type denial', async () => (await stack.events()).find((e) => e.source === 'kernel' && e.agent === 'dev' && e.reason === 'socket-type'));
    assert.equal(ev.hook, 'sock_create');
  });

  test('UDP and QUIC on 443: refused at once, to an allowed domain\'s resolved address and to a literal, sendto and connect', async () => {
    assert.equal((await agent('resolve', 'allowed.test')).ok, true, 'allowed.test is in the DNS cache now');
    for (const host of [ip(HOST.allowed), ip(HOST.elsewhere)]) {
      expectEperm(await agent('udp', host, '443'), `sendto ${host}:443`);
      expectEperm(await attack('udpconnect', host, '443'), `QUIC (connected UDP) ${host}:443`);
      assert.equal((await kernelEvent(host, 443, 'denied')).reason, 'udp-no-route');
    }
    const udpAtProxy = (await stack.proxy()).filter((r) => r.kind === 'udp');
    assert.deepEqual(udpAtProxy, [], 'no datagram even reached the proxy');
  });

  test('an allowed SNI towards another address lands on the proxy, never at that address', async () => {
    const n = (await stack.proxyConnections()).length;
    const r = await agent('tls', ip(HOST.elsewhere), '443', 'allowed.test');
    const [seen] = await stack.proxyConnectionsAfter(n);
    assert.equal(seen!.port, 10000, `front listener: ${JSON.stringify(seen)} (agent: ${JSON.stringify(r)})`);
    assert.equal(seen!.sni, 'allowed.test', 'the proxy decides by the name, and connects to that name, not to the address asked');
    assert.equal((await kernelEvent(ip(HOST.elsewhere), 443, 'redirected')).redirect?.port, 10000);
    await assertNothingReachedTheInternet();
  });

  test("a TCP rule's port towards another host lands on the catch-all; towards the rule's host it goes to the pinned upstream only", async () => {
    const ports = await stack.listenerPorts();
    const dedicated = Object.entries(ports).find(([k]) => k.includes('allowed.test') && k.includes(String(TCP_RULE_PORT)))?.[1];
    assert.ok(dedicated, `a listener for allowed.test:${TCP_RULE_PORT}: ${JSON.stringify(ports)}`);
    assert.equal((await agent('resolve', 'allowed.test')).ok, true);
    const n = (await stack.proxyConnections()).length;
    const other = await agent('tcp', ip(HOST.elsewhere), String(TCP_RULE_PORT));
    const [elsewhere] = await stack.proxyConnectionsAfter(n);
    assert.equal(elsewhere!.port, 10000, `another host on the rule's port: the catch-all (${JSON.stringify(elsewhere)}, agent ${JSON.stringify(other)})`);
    assert.notEqual(elsewhere!.verdict, 'accepted');
    const m = (await stack.proxyConnections()).length;
    const pinned = await agent('tcp', ip(HOST.allowed), String(TCP_RULE_PORT));
    const [rule] = await stack.proxyConnectionsAfter(m);
    assert.equal(rule!.port, dedicated, `the rule's own listener (${JSON.stringify(rule)}, agent ${JSON.stringify(pinned)})`);
    assert.equal(rule!.upstream, `allowed.test:${TCP_RULE_PORT}`, 'its upstream is the pinned host, whatever address the agent dialled');
    await assertNothingReachedTheInternet();
  });

  test('the host gateway and the metadata address: the gateway refused at once (nothing arrives on the host), metadata TCP to the catch-all, UDP refused', async () => {
    const gateway = await stack.gateway();
    const host = new HostListener();
    const port = await host.listen(gateway);
    try {
      expectEperm(await agent('tcp', gateway, String(port)), 'TCP to the host gateway');
      expectEperm(await agent('udp', gateway, String(port)), 'UDP to the host gateway');
      assert.equal((await kernelEvent(gateway, port, 'denied')).reason, 'gateway');
      assert.equal(host.accepted, 0, 'the host listener accepted nothing');
    } finally {
      await host.close();
    }
    const n = (await stack.proxyConnections()).length;
    const meta = await attack('http', '169.254.169.254', '80', '169.254.169.254');
    const [seen] = await stack.proxyConnectionsAfter(n);
    assert.equal(seen!.port, 10000, `metadata: the proxy's catch-all (${JSON.stringify(seen)}, agent ${JSON.stringify(meta)})`);
    assert.equal(seen!.status, 403, `an unlisted Host gets the proxy's 403: ${JSON.stringify(seen)}`);
    assert.match(String(meta.status), /^HTTP\/1\.1 403/, JSON.stringify(meta));
    expectEperm(await agent('udp', '169.254.169.254', '80'), 'UDP to the metadata address');
  });

  test('another agent on the network: refused at once, its listener never sees a connection', async () => {
    const peer = await stack.startAgent('peer');
    const peerIp = await stack.agentIp(peer);
    await runOk('docker', ['exec', '-d', peer, 'python3', '/agent/attack.py', 'listen', '7777', '/tmp/listen.log']);
    const log = async () => (await run('docker', ['exec', peer, 'cat', '/tmp/listen.log'])).stdout.split('\n').filter(Boolean);
    await waitUntil('the peer listens', async () => ((await log()).length ? true : undefined));
    expectEperm(await agent('tcp', peerIp, '7777'), 'TCP to another agent');
    expectEperm(await agent('udp', peerIp, '7777'), 'UDP to another agent');
    assert.equal((await kernelEvent(peerIp, 7777, 'denied')).reason, 'peer');
    await sleep(300);
    assert.deepEqual(await log(), ['{"ready": true}'], 'nothing arrived at the other agent');
  });

  test("the infrastructure's admin ports (Envoy 9902, CoreDNS 18902/9153, the control plane) are refused at once", async () => {
    const { envoy, coredns, controlplane } = stack.status.network;
    const targets: [string, number, string][] = [
      [envoy, 9902, 'infra-port'],
      [coredns, 18902, 'infra-port'],
      [coredns, 9153, 'infra-port'],
      [controlplane, 80, 'peer'],
      [controlplane, 8080, 'peer'],
    ];
    for (const [host, port, reason] of targets) {
      expectEperm(await agent('tcp', host, String(port)), `TCP ${host}:${port}`);
      assert.equal((await kernelEvent(host, port, 'denied')).reason, reason, `${host}:${port}`);
    }
    expectEperm(await agent('udp', coredns, '18902'), 'UDP to CoreDNS off port 53');
  });

  test("root rewrites /etc/resolv.conf to an outside resolver: CoreDNS still answers, the resolver never hears the agent", async () => {
    const blocked = await attack('resolvconf', inet.dnsIp, 'exfil-resolvconf.blocked.test');
    assert.equal(blocked.wrote, `nameserver ${inet.dnsIp}\noptions attempts:1 timeout:2\n`, 'root could rewrite the file');
    assert.equal(blocked.errno, 'NXDOMAIN', `the firewall's refusal, not the outside answer (${ip(HOST.elsewhere)}): ${JSON.stringify(blocked)}`);
    const allowed = await attack('resolvconf', inet.dnsIp, 'allowed.test');
    assert.deepEqual(allowed.addresses, [ip(HOST.allowed)], JSON.stringify(allowed));
    assert.deepEqual((await inet.queries()).filter((q) => q.name.includes('exfil-resolvconf')), []);
    await assertNothingReachedTheInternet();
  });

  test('a flood of denied sends: the control plane records at most burst + rate × time events, every other decision is a counted drop', async () => {
    const N = 3000;
    const port = 31337;
    const cgroup = String(await stack.cgroupIdOf(dev));
    const before = await stack.datapathStats();
    const floodStarted = Date.now();
    const r = await attack('burst', ip(HOST.elsewhere), String(port), String(N));
    assert.deepEqual(r.counts, { 'error:EPERM': N }, JSON.stringify(r));
    const seconds = r.seconds as number;
    const flooded = async () => (await stack.events()).filter((e) => e.source === 'kernel' && e.agent === 'dev' && e.dst?.port === port);
    // Settled: the follower has written what the ring held.
    let last = -1;
    await waitUntil('the event log settled', async () => {
      const now = (await flooded()).length;
      const settled = now === last && now > 0;
      last = now;
      return settled ? true : undefined;
    }, 15_000, 500);
    const after = await stack.datapathStats();
    const emitted = (await flooded()).length;
    const dropped = (after.ratelimitDrops[cgroup] ?? 0) - (before.ratelimitDrops[cgroup] ?? 0);
    process.stdout.write(`# flood: ${N} sends in ${seconds.toFixed(2)} s → ${emitted} events, ${dropped} counted drops\n`);
    assert.ok(emitted <= EVENTS.burst + Math.ceil(EVENTS.rate * seconds) + 1, `bounded: ${emitted} events for ${seconds.toFixed(2)} s`);
    assert.ok(dropped > 0, 'the token bucket dropped and counted');
    assert.equal(emitted + dropped, N, `every decision is an event or a counted drop (${emitted} + ${dropped})`);
    assert.equal(after.eventsDrops - before.eventsDrops, 0, 'the ring itself never overflowed');
    assert.ok(after.verdicts.denied! - before.verdicts.denied! >= N, 'the metrics counted every denial');
    // The flood leaves a trace in the stream it tried to bury: the control plane notes the drops it
    // finds at each probe (one line per increase), adding up to what the datapath counted.
    const noted = async (): Promise<number> =>
      (await stack.events())
        .filter((e) => e.source === 'controlplane' && e.agent === 'dev' && Date.parse(String(e.time)) >= floodStarted - 1000)
        .map((e) => Number(/: (\d+) kernel events not reported \(per-agent rate limit/.exec(String(e.message ?? ''))?.[1] ?? 0))
        .reduce((a, b) => a + b, 0);
    await waitUntil(`the control plane's notes of the ${dropped} held-back events (noted so far: ${await noted()})`, async () => ((await noted()) >= dropped ? true : undefined), 15_000, 250);
    assert.ok(((await stack.fwStatus()).eventDrops?.rateLimited ?? 0) >= dropped, 'firewall status counts them too');
  });

  test('a dns_cache entry past its TTL no longer routes: connecting by the remembered IP lands on the catch-all', async () => {
    const dedicated = Object.entries(await stack.listenerPorts()).find(([k]) => k.includes('ttl.test'))?.[1];
    assert.ok(dedicated, `a listener for ttl.test:${TTL_RULE_PORT}`);
    const wait = ttlResolvedAt + TTL_EXPIRY_MS + 1000 - Date.now();
    if (wait > 0) await sleep(wait);
    const n = (await stack.proxyConnections()).length;
    const events = (await stack.events()).length;
    const r = await attack('http', ip(HOST.ttl), String(TTL_RULE_PORT), 'ttl.test');
    const [seen] = await stack.proxyConnectionsAfter(n);
    assert.equal(seen!.port, 10000, `expired: no route, the catch-all (${JSON.stringify(seen)}, agent ${JSON.stringify(r)})`);
    assert.equal(seen!.status, 403, `ttl.test has no HTTP rule: the catch-all's 403 (${JSON.stringify(seen)})`);
    const ev = await kernelEvent(ip(HOST.ttl), TTL_RULE_PORT, 'redirected', events);
    assert.equal(ev.reason, 'catch-all');
    await assertNothingReachedTheInternet();
  });

  test('sweep: after every attack, no origin saw a connection and the resolver heard only CoreDNS', async () => {
    await assertNothingReachedTheInternet(true);
  });
});
