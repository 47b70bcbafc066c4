/**
 * The end-to-end suite's own infrastructure, on the real engine: the test internet (resolver,
 * origins, the route from another network) and the Envoy stand-in fed a rendered configuration.
 * The suites of the firewall rely on these; this proves they show what they claim to show.
 *
 *   node --import tsx --test test/e2e/internet.test.ts
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import { createCertificateAuthority } from '../../src/core/pki/authority';
import { createLeafKey } from '../../src/core/pki/domainCertificate';
import { Policy } from '../../src/core/policy/policy';
import { fromEnvoyAccessLog } from '../../src/core/events/envoyAccessLog';
import { renderAll } from '../../src/core/render/renderAll';
import { ensurePythonImage, PY_IMAGE, sweepStaleNetworks } from './datapath-testbed';
import {
  ensureEnvoyStandinImage, envoyAccessLog, envoyRecords, envoyStdout, startEnvoyStandin, sweepStaleInternetRoutes, TestInternet, waitForEnvoyRecord,
  writeEnvoyDir,
} from './internet';
import { E2E_PID_LABEL, removeContainer, requireTestbed, run, runOk, sweepStale, uniqueName } from './testbed';

/** What a test container does: one command per run, one JSON result on stdout. */
const PROBE_PY = String.raw`
import errno, json, socket, ssl, struct, sys

def failure(e, stage):
    code = errno.errorcode.get(e.errno, str(e.errno)) if isinstance(getattr(e, "errno", None), int) else type(e).__name__
    return {"ok": False, "stage": stage, "errno": code, "error": str(e)}

def dns(server, name, qtype, use_tcp):
    q = struct.pack("!6H", 0x1234, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack("!2H", {"A": 1, "AAAA": 28}[qtype], 1)
    try:
        if use_tcp:
            s = socket.create_connection((server, 53), timeout=3)
            s.sendall(struct.pack("!H", len(q)) + q)
            n = struct.unpack("!H", s.recv(2))[0]
            r = b""
            while len(r) < n:
                r += s.recv(n - len(r))
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(3)
            s.sendto(q, (server, 53))
            r = s.recv(4096)
    except OSError as e:
        return failure(e, "dns")
    flags, qd, an = struct.unpack("!3H", r[2:8])
    answers = [socket.inet_ntoa(r[len(r) - 4 - 16 * i + 0:len(r) - 16 * i]) for i in reversed(range(an))] if qtype == "A" else []
    return {"ok": True, "rcode": flags & 0xF, "answers": answers}

def tcp(host, port):
    try:
        s = socket.create_connection((host, port), timeout=3)
    except OSError as e:
        return failure(e, "connect")
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        return failure(e, "recv")
    return {"ok": True, "banner": data.decode().strip()}

def http(sock, host, path):
    sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode())
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return {"ok": True, "status": int(head.split(b" ")[1]), "body": body.decode()}

def tls(host, port, sni, cafile=None, http_host=None):
    try:
        raw = socket.create_connection((host, port), timeout=3)
    except OSError as e:
        return failure(e, "connect")
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        s = ctx.wrap_socket(raw, server_hostname=sni)
    except (OSError, ssl.SSLError) as e:
        return failure(e, "handshake")
    if not http_host:
        return {"ok": True, "handshake": True}
    try:
        return http(s, http_host, "/")
    except (OSError, ssl.SSLError) as e:
        return failure(e, "http")

def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(b"ping", (host, port))
        return {"ok": True, "reply": s.recv(2048).decode()}
    except OSError as e:
        return failure(e, "udp")

def plain_http(host, port, http_host, path):
    try:
        return http(socket.create_connection((host, port), timeout=3), http_host, path)
    except OSError as e:
        return failure(e, "http")

cmd, a = sys.argv[1], sys.argv[2:]
if cmd == "dns":
    r = dns(a[0], a[1], a[2] if len(a) > 2 else "A", "--tcp" in a)
elif cmd == "tcp":
    r = tcp(a[0], int(a[1]))
elif cmd == "tls":
    r = tls(a[0], int(a[1]), a[2], a[3] if len(a) > 3 and a[3] else None, a[4] if len(a) > 4 else None)
elif cmd == "udp":
    r = udp(a[0], int(a[1]))
elif cmd == "http":
    r = plain_http(a[0], int(a[1]), a[2], a[3] if len(a) > 3 else "/")
else:
    r = {"ok": False, "error": "unknown command " + cmd}
print(json.dumps(r))
`;

type Probe = Record<string, unknown>;

const inet = new TestInternet();
const workDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-inet-test-'));
const envoyDir = join(workDir, 'envoy');
const containers: string[] = [];
const networks: string[] = [];
/** A second network: where "the firewall network" would be. */
let side = { name: '', prefix: '', subnet: '' };
let inetClient = '';
let sideClient = '';
let envoy = '';

async function createSideNetwork(): Promise<typeof side> {
  const name = uniqueName('inet-side');
  for (let attempt = 0; attempt < 20; attempt++) {
    const prefix = `10.${100 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}`;
    const r = await run('docker', ['network', 'create', '--label', `${E2E_PID_LABEL}=${process.pid}`, '--subnet', `${prefix}.0/24`, '--gateway', `${prefix}.1`, name]);
    if (r.code === 0) {
      networks.push(name);
      return { name, prefix, subnet: `${prefix}.0/24` };
    }
    if (!/overlap/i.test(r.stderr)) throw new Error(r.stderr);
  }
  throw new Error('no free 10.x.y.0/24');
}

async function startClient(network: string, ip: string): Promise<string> {
  const name = uniqueName('inet-client');
  containers.push(name);
  await runOk('docker', ['run', '-d', '--name', name, '--label', `${E2E_PID_LABEL}=${process.pid}`, '--network', network, '--ip', ip, '-v', `${workDir}:/t:ro`, PY_IMAGE, 'sleep', 'infinity']);
  return name;
}

async function probe(container: string, ...args: string[]): Promise<Probe> {
  const r = await run('docker', ['exec', container, 'python3', '/t/probe.py', ...args], 30_000);
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Probe;
  } catch {
    throw new Error(`probe ${args.join(' ')} in ${container} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  }
}

const POLICY_YAML = `
security:
  firewall:
    add_domains: [allowed.test, .wild.test]
    rules:
      - dst: git.test
        proto: ssh
      - dst: bad.wild.test
        action: deny
      - dst: plain.test
        proto: http
      - dst: ntp.test
        proto: udp
        port: "123"
`;

function render(yaml: string, previousAllocation?: Readonly<Record<string, number>>) {
  const loaded = loadProject(yaml);
  assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
  return renderAll(new Policy({ project: loaded.rules }), { upstreams: [inet.dnsIp], pki, ...(previousAllocation ? { previousAllocation } : {}) });
}
const pki = { ca: createCertificateAuthority(), leafKey: createLeafKey() };

describe('the test internet and the Envoy stand-in', () => {
  before(async () => {
    await requireTestbed(['docker daemon', 'base image']);
    await sweepStale();
    await sweepStaleNetworks();
    await sweepStaleInternetRoutes();
    await ensurePythonImage();
    await ensureEnvoyStandinImage();
    writeFileSync(join(workDir, 'probe.py'), PROBE_PY);
    writeFileSync(join(workDir, 'ca.pem'), pki.ca.certificatePem);
    await inet.start({ 'allowed.test': 10, '*.wild.test': 11, 'deep.x.wild.test': 12 });
    await inet.startOrigin('plain', inet.address(10), [22, 80]);
    await inet.startOrigin('secure', inet.address(11), [443], { tls: true });
    inetClient = await startClient(inet.network!.name, inet.address(100));
    side = await createSideNetwork();
    sideClient = await startClient(side.name, `${side.prefix}.50`);
  });

  after(async () => {
    const errors: string[] = [];
    // Ours first: a container still on the internet network would keep inet.stop() from removing it.
    for (const c of containers) await removeContainer(c).catch((e: Error) => errors.push(e.message));
    errors.push(...(await inet.stop()));
    for (const n of networks) {
      const r = await run('docker', ['network', 'rm', n]);
      if (r.code !== 0 && !/not found/i.test(r.stderr)) errors.push(r.stderr);
    }
    rmSync(workDir, { recursive: true, force: true });
    assert.deepEqual(errors, []);
  });

  describe('the resolver', () => {
    test('answers A for a zone name over UDP and TCP, and logs each query with its peer and transport', async () => {
      assert.deepEqual(await probe(inetClient, 'dns', inet.dnsIp, 'allowed.test'), { ok: true, rcode: 0, answers: [inet.address(10)] });
      assert.deepEqual(await probe(inetClient, 'dns', inet.dnsIp, 'ALLOWED.test', 'A', '--tcp'), { ok: true, rcode: 0, answers: [inet.address(10)] });
      const qs = (await inet.queries()).filter((q) => q.name === 'allowed.test');
      assert.deepEqual(qs.map((q) => [q.type, q.proto, q.peer, q.rcode, q.answer]), [
        ['A', 'udp', inet.address(100), 'NOERROR', inet.address(10)],
        ['A', 'tcp', inet.address(100), 'NOERROR', inet.address(10)],
      ]);
    });
    test('NXDOMAIN for a name outside the zone; no data for AAAA of a zone name', async () => {
      assert.deepEqual(await probe(inetClient, 'dns', inet.dnsIp, 'unknown.test'), { ok: true, rcode: 3, answers: [] });
      assert.deepEqual(await probe(inetClient, 'dns', inet.dnsIp, 'sub.allowed.test'), { ok: true, rcode: 3, answers: [] });
      assert.deepEqual(await probe(inetClient, 'dns', inet.dnsIp, 'allowed.test', 'AAAA'), { ok: true, rcode: 0, answers: [] });
    });
    test('a wildcard answers one or more labels below it, an exact entry below it wins, the apex is not covered', async () => {
      assert.deepEqual(await probe(inetClient, 'dns', inet.dnsIp, 'a.wild.test'), { ok: true, rcode: 0, answers: [inet.address(11)] });
      assert.deepEqual(await probe(inetClient, 'dns', inet.dnsIp, 'a.b.wild.test'), { ok: true, rcode: 0, answers: [inet.address(11)] });
      assert.deepEqual(await probe(inetClient, 'dns', inet.dnsIp, 'deep.x.wild.test'), { ok: true, rcode: 0, answers: [inet.address(12)] });
      assert.deepEqual(await probe(inetClient, 'dns', inet.dnsIp, 'wild.test'), { ok: true, rcode: 3, answers: [] });
    });
    test('setZone takes effect on the next query', async () => {
      inet.setZone({ 'allowed.test': 10, 'late.test': 13 });
      assert.deepEqual(await probe(inetClient, 'dns', inet.dnsIp, 'late.test'), { ok: true, rcode: 0, answers: [inet.address(13)] });
      inet.setZone({ 'allowed.test': 10, '*.wild.test': 11, 'deep.x.wild.test': 12 });
      assert.deepEqual(await probe(inetClient, 'dns', inet.dnsIp, 'late.test'), { ok: true, rcode: 3, answers: [] });
    });
  });

  describe('origins', () => {
    test("record a TLS ClientHello's SNI and ALPN, then close without a handshake", async () => {
      const r = await probe(inetClient, 'tls', inet.address(11), '443', 'x.test');
      assert.equal(r.ok, false, 'there is no real TLS behind an origin');
      const c = await inet.waitForConnection('secure', (c) => c.sni === 'x.test');
      assert.deepEqual([c.port, c.peer, c.tls, c.local, c.alpn], [443, inet.address(100), true, inet.address(11), ['http/1.1']]);
    });
    test('answer a banner to a client that waits, and record plain HTTP with its Host', async () => {
      assert.deepEqual(await probe(inetClient, 'tcp', inet.address(10), '22'), { ok: true, banner: 'origin-plain:22' });
      assert.deepEqual(await probe(inetClient, 'http', inet.address(10), '80', 'allowed.test', '/x?y=1'), { ok: true, status: 200, body: 'origin-plain:80\n' });
      const cs = await inet.connections('plain');
      assert.deepEqual(cs.map((c) => [c.port, c.tls, c.host, c.method, c.path]), [
        [22, false, undefined, undefined, undefined],
        [80, false, 'allowed.test', 'GET', '/x?y=1'],
      ]);
    });
  });

  describe('routeFrom', () => {
    test('another network reaches the internet only after routeFrom, and the origin sees its real address', async () => {
      const [tcpBefore, dnsBefore] = await Promise.all([probe(sideClient, 'tcp', inet.address(10), '22'), probe(sideClient, 'dns', inet.dnsIp, 'allowed.test')]);
      assert.equal(tcpBefore.ok, false, `Docker isolates the bridges: ${JSON.stringify(tcpBefore)}`);
      assert.equal(dnsBefore.ok, false, `Docker isolates the bridges: ${JSON.stringify(dnsBefore)}`);

      await inet.routeFrom(side.subnet);
      assert.deepEqual(await probe(sideClient, 'tcp', inet.address(10), '22'), { ok: true, banner: 'origin-plain:22' });
      assert.deepEqual(await probe(sideClient, 'dns', inet.dnsIp, 'allowed.test'), { ok: true, rcode: 0, answers: [inet.address(10)] });
      const c = await inet.waitForConnection('plain', (c) => c.peer === `${side.prefix}.50`);
      assert.equal(c.port, 22);
      const rules = await runOk('iptables', ['-S', 'DOCKER-USER']);
      assert.match(rules, new RegExp(`-s ${side.subnet.replace(/\./g, '\\.')} -d ${inet.network!.subnet.replace(/\./g, '\\.')} .*-j ACCEPT`));
    });
  });

  describe('the Envoy stand-in', () => {
    let dedicated = 0;
    let allocation: Readonly<Record<string, number>> = {};
    const envoyIp = () => `${side.prefix}.200`;

    before(async () => {
      const rendered = render(POLICY_YAML);
      allocation = rendered.allocation;
      dedicated = rendered.allocation['tcp:git.test:22']!;
      assert.ok(dedicated >= 10001, JSON.stringify(rendered.allocation));
      writeEnvoyDir(rendered.files, envoyDir);
      envoy = await startEnvoyStandin({ network: side.name, ip: envoyIp(), configDir: envoyDir });
      containers.push(envoy);
    });

    test('answers the health listener on 9902, as the rendered bootstrap says, and /ready', async () => {
      assert.deepEqual(await probe(sideClient, 'http', envoyIp(), '9902', 'x', '/'), { ok: true, status: 200, body: 'ok\n' });
      assert.deepEqual(await probe(sideClient, 'http', envoyIp(), '9902', 'x', '/ready'), { ok: true, status: 200, body: 'LIVE\n' });
      assert.equal((await probe(sideClient, 'http', envoyIp(), '9902', 'x', '/other')).status, 404);
    });

    test('a dedicated TCP listener accepts and names its cluster and upstream', async () => {
      assert.deepEqual(await probe(sideClient, 'tcp', envoyIp(), String(dedicated)), { ok: true, banner: `envoy:${dedicated}` });
      const r = await waitForEnvoyRecord(envoy, (r) => r.kind === 'conn' && r.port === dedicated);
      assert.deepEqual([r.verdict, r.peer, r.listener, r.upstream], ['accepted', `${side.prefix}.50`, 'tcp:git.test:22', 'git.test:22']);
    });

    test('a UDP listener answers each datagram and names its upstream', async () => {
      const port = allocation['udp:ntp.test:123']!;
      assert.deepEqual(await probe(sideClient, 'udp', envoyIp(), String(port)), { ok: true, reply: `envoy-udp:${port}` });
      const r = await waitForEnvoyRecord(envoy, (r) => r.kind === 'udp' && r.port === port);
      assert.deepEqual([r.peer, r.upstream], [`${side.prefix}.50`, 'ntp.test:123']);
    });

    test('the front listener resets a TLS connection whose SNI no filter chain lists', async () => {
      for (const sni of ['evil.test', 'wild.test.evil', 'xallowed.test']) {
        const r = await probe(sideClient, 'tls', envoyIp(), '10000', sni);
        assert.deepEqual([r.ok, r.errno], [false, 'ECONNRESET'], `${sni}: ${JSON.stringify(r)}`);
        const rec = await waitForEnvoyRecord(envoy, (r) => r.kind === 'conn' && r.sni === sni);
        assert.deepEqual([rec.port, rec.transport, rec.verdict], [10000, 'tls', 'reset']);
      }
    });

    test('a listed SNI is accepted: TLS with the rendered domain certificate, then the route configuration', async () => {
      const ok = await probe(sideClient, 'tls', envoyIp(), '10000', 'allowed.test', '/t/ca.pem', 'allowed.test');
      assert.deepEqual(ok, { ok: true, status: 200, body: 'envoy:10000\n' });
      const rec = await waitForEnvoyRecord(envoy, (r) => r.kind === 'conn' && r.sni === 'allowed.test');
      assert.deepEqual([rec.verdict, rec.chain, rec.tls, rec.host, rec.vhost, rec.status], ['accepted', 'tls:allowed.test:443', 'terminated', 'allowed.test', 'https:allowed.test:443', 200]);
      // Another Host inside an accepted chain (domain fronting): the deny-all virtual host.
      const fronted = await probe(sideClient, 'tls', envoyIp(), '10000', 'allowed.test', '/t/ca.pem', 'evil.test');
      assert.deepEqual(fronted, { ok: true, status: 403, body: 'Forbidden\n' });
      const frontedRec = await waitForEnvoyRecord(envoy, (r) => r.kind === 'conn' && r.sni === 'allowed.test' && r.host === 'evil.test');
      assert.deepEqual([frontedRec.vhost, frontedRec.route, frontedRec.status], ['deny-all', 'deny', 403]);
    });

    test('requests and TCP connections are also written to the access log in the rendered json_format', async () => {
      const lines = await envoyAccessLog(envoy);
      const allowed = lines.find((l) => l.sni === 'allowed.test' && l.authority === 'allowed.test');
      assert.ok(allowed, JSON.stringify(lines));
      assert.equal(allowed.client, `${side.prefix}.50:${String(allowed.client).split(':')[1]}`);
      assert.deepEqual([allowed.listener, allowed.method, allowed.path, allowed.status, allowed.route, allowed.flags], [`${envoyIp()}:10000`, 'GET', '/', 200, 'path-default', '-']);
      assert.ok(!Number.isNaN(Date.parse(String(allowed.time))));
      // The control plane's parser reads them as it would read Envoy's.
      const events = (await envoyStdout(envoy)).map((l) => fromEnvoyAccessLog(l)).filter((e) => e !== undefined);
      const verdicts = events.map((e) => `${e.verdict} ${e.domain ?? '-'} ${e.reason ?? '-'}`);
      assert.ok(verdicts.includes('allowed allowed.test -'), verdicts.join('\n'));
      assert.ok(verdicts.includes('denied allowed.test host-denied'), verdicts.join('\n'));
      assert.ok(lines.some((l) => l.listener === `${envoyIp()}:${dedicated}` && l.status === 0), 'the tcp_proxy connection');
      assert.equal(events.length, lines.length, 'every access-log line is an event, and nothing else is');
    });

    test('server_names wildcards match one or more labels, the apex is listed apart, a deny rule closes', async () => {
      // a.b.wild.test: the chain takes it, but the `*.wild.test` certificate covers one label only
      // (RFC 6125), so that one is checked without verifying the certificate.
      for (const [sni, ca] of [['a.wild.test', '/t/ca.pem'], ['wild.test', '/t/ca.pem'], ['a.b.wild.test', '']] as const) {
        const r = await probe(sideClient, 'tls', envoyIp(), '10000', sni, ca, sni);
        assert.deepEqual([r.ok, r.status], [true, 200], `${sni}: ${JSON.stringify(r)}`);
      }
      const denied = await probe(sideClient, 'tls', envoyIp(), '10000', 'bad.wild.test');
      assert.equal(denied.ok, false);
      const rec = await waitForEnvoyRecord(envoy, (r) => r.kind === 'conn' && r.sni === 'bad.wild.test');
      assert.equal(rec.verdict, 'denied');
    });

    test('plain HTTP on the front listener is routed by Host', async () => {
      assert.deepEqual(await probe(sideClient, 'http', envoyIp(), '10000', 'plain.test', '/'), { ok: true, status: 200, body: 'envoy:10000\n' });
      assert.deepEqual(await probe(sideClient, 'http', envoyIp(), '10000', 'evil.test', '/'), { ok: true, status: 403, body: 'Forbidden\n' });
      const rec = await waitForEnvoyRecord(envoy, (r) => r.kind === 'conn' && r.host === 'evil.test' && r.transport === 'raw_buffer');
      assert.deepEqual([rec.transport, rec.chain, rec.vhost, rec.status], ['raw_buffer', 'http:80', 'deny-all', 403]);
    });

    test('a changed lds.json opens new listeners and closes removed ones; allocated ports stay', async () => {
      const reload = async (files: ReadonlyMap<string, string>) => {
        const versions = (await envoyRecords(envoy)).filter((r) => r.kind === 'listeners').length;
        writeEnvoyDir(files, envoyDir);
        return waitForEnvoyRecord(envoy, (r) => r.kind === 'listeners' && r.version! > versions, 'reload');
      };
      const withTcp = POLICY_YAML + '      - dst: 10.0.0.5\n        proto: tcp\n        port: "9000"\n';
      const added = render(withTcp, allocation);
      const tcpPort = added.allocation['tcp:10.0.0.5:9000']!;
      assert.equal(added.allocation['tcp:git.test:22'], dedicated);
      assert.deepEqual((await reload(added.files)).ports, [10000, dedicated, tcpPort].sort((a, b) => a - b));
      assert.deepEqual(await probe(sideClient, 'tcp', envoyIp(), String(tcpPort)), { ok: true, banner: `envoy:${tcpPort}` });
      const rec = await waitForEnvoyRecord(envoy, (r) => r.kind === 'conn' && r.port === tcpPort);
      assert.equal(rec.upstream, '10.0.0.5:9000');

      const removed = render(withTcp.replace(/ {6}- dst: git\.test\n {8}proto: ssh\n/, ''), added.allocation);
      assert.equal(removed.allocation['tcp:10.0.0.5:9000'], tcpPort);
      assert.deepEqual((await reload(removed.files)).ports, [10000, tcpPort]);
      assert.equal((await probe(sideClient, 'tcp', envoyIp(), String(dedicated))).errno, 'ECONNREFUSED');
      assert.deepEqual(await probe(sideClient, 'tcp', envoyIp(), String(tcpPort)), { ok: true, banner: `envoy:${tcpPort}` });
    });

    test('the stand-in logged no error of its own', async () => {
      const errors = (await envoyRecords(envoy)).filter((r) => ['error', 'config-error', 'bind-error', 'fatal'].includes(r.kind));
      assert.deepEqual(errors, []);
    });
  });

  describe('stop', () => {
    test('removes the containers, the network and the iptables rules', async () => {
      const net = inet.network!;
      await removeContainer(inetClient);
      const origin = (await runOk('docker', ['ps', '-a', '--filter', `network=${net.name}`, '--format', '{{.Names}}'])).trim().split('\n');
      assert.equal(origin.length, 3, `the resolver and two origins: ${origin.join(',')}`);
      assert.deepEqual(await inet.stop(), []);
      assert.equal((await run('docker', ['network', 'inspect', net.name])).code, 1);
      for (const c of origin) assert.equal((await run('docker', ['inspect', c])).code, 1, `${c} still exists`);
      for (const table of ['filter', 'nat']) {
        const rules = await runOk('iptables', ['-t', table, '-S']);
        assert.ok(!rules.includes(net.subnet), `${table} still mentions ${net.subnet}:\n${rules}`);
      }
    });

    test("sweepStaleInternetRoutes removes a killed run's rules and leaves a live run's", async () => {
      const dead = await new Promise<number>((resolve) => {
        const child = spawn('true');
        child.on('exit', () => resolve(child.pid!));
      });
      const rule = (pid: number) => ['-s', '203.0.113.7/32', '-d', '203.0.113.8/32', '-m', 'comment', '--comment', `clawker-e2e-inet:pid=${pid}`, '-j', 'ACCEPT'];
      await runOk('iptables', ['-w', '5', '-I', 'DOCKER-USER', ...rule(dead)]);
      await runOk('iptables', ['-w', '5', '-I', 'DOCKER-USER', ...rule(process.pid)]);
      try {
        await sweepStaleInternetRoutes();
        const rules = await runOk('iptables', ['-S', 'DOCKER-USER']);
        assert.ok(!rules.includes(`pid=${dead}"`), rules);
        assert.ok(rules.includes(`pid=${process.pid}"`), rules);
      } finally {
        await run('iptables', ['-w', '5', '-D', 'DOCKER-USER', ...rule(dead)]);
        await run('iptables', ['-w', '5', '-D', 'DOCKER-USER', ...rule(process.pid)]);
      }
    });
  });
});
