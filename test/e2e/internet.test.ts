/**
 * The end-to-end suite's own infrastructure, on the real engine: the test internet (resolver,
 * origins, a git server over HTTPS, the route from another network) and the Envoy stand-in fed a
 * rendered configuration, answering allowed traffic itself or forwarding it to the origins; last, a
 * git clone from an agent through the real control plane, CoreDNS, the datapath and the forwarding
 * stand-in. The suites of the firewall rely on these; this proves they show what they claim to show.
 *
 *   node --import tsx --test test/e2e/internet.test.ts
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { loadProject } from '../../src/core/config/load';
import { createCertificateAuthority } from '../../src/core/pki/authority';
import { createLeafKey } from '../../src/core/pki/domainCertificate';
import { Policy } from '../../src/core/policy/policy';
import { fromEnvoyAccessLog } from '../../src/core/events/envoyAccessLog';
import { renderAll } from '../../src/core/render/renderAll';
import { agentContainerSpec, DEFAULT_PROJECT_SETTINGS } from '../../src/core/stack/agentSpec';
import { agentsCgroupParent } from '../../src/core/stack/cgroupPaths';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { stackNames } from '../../src/core/stack/stackNames';
import { ensurePythonImage, PY_IMAGE, sweepStaleNetworks } from './datapath-testbed';
import {
  ensureEnvoyStandinImage, ensureGitImage, envoyAccessLog, envoyRecords, envoyStdout, GIT_IMAGE, type GitOrigin, startEnvoyStandin, sweepStaleInternetRoutes,
  TestInternet, waitForEnvoyRecord, writeEnvoyDir,
} from './internet';
import { ensureStackImages } from './stackImages';
import { BPFFS_DIR, clawker, E2E_PID_LABEL, removeCgroupDirs, removeContainer, requireTestbed, ROOT, run, runOk, sweepStale, testStackEnv, uniqueName, removeStackVolumes } from './testbed';

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

/** `fetch URL CAFILE [USER PASSWORD]`: one HTTPS GET, its status and WWW-Authenticate. */
const FETCH_PY = String.raw`
import base64, json, ssl, sys, urllib.error, urllib.request
req = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 4:
    req.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % (sys.argv[3], sys.argv[4])).encode()).decode())
try:
    r = urllib.request.urlopen(req, context=ssl.create_default_context(cafile=sys.argv[2]), timeout=10)
    status, headers = r.status, r.headers
except urllib.error.HTTPError as e:
    status, headers = e.code, e.headers
except Exception as e:
    print(json.dumps({"ok": False, "error": str(e)}))
    sys.exit(0)
print(json.dumps({"ok": True, "status": status, "wwwAuthenticate": headers.get("WWW-Authenticate")}))
`;

/** `tree DIR`: the files of a work tree (not .git) as a JSON object path → content. */
const TREE_PY = String.raw`
import json, os, sys
root = sys.argv[1]
out = {}
for d, dirs, files in os.walk(root):
    dirs[:] = [x for x in dirs if x != ".git"]
    for f in files:
        p = os.path.join(d, f)
        out[os.path.relpath(p, root)] = open(p).read()
print(json.dumps(out, sort_keys=True))
`;

/**
 * `portfwd LISTEN_PORT HOST PORT`: a TCP relay on 127.0.0.1, what the datapath's redirect is to an
 * agent (443 → the stand-in's front listener on 10000) for a client that has no datapath.
 */
const PORTFWD_PY = String.raw`
import socket, sys, threading
listen_port, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

def serve(c):
    try:
        u = socket.create_connection((host, port), timeout=10)
    except OSError:
        c.close()
        return
    u.settimeout(None)
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    pump(u, c)

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", listen_port))
s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

type Probe = Record<string, unknown>;

/** The git origin every git test clones from. */
const GIT = { name: 'git.test', user: 'alice', password: 'correct-horse-42', repo: 'demo', files: { 'README.md': '# demo\n', 'src/main.py': 'print("hello from the test internet")\n' } };
let gitOrigin: GitOrigin;
let cloneCount = 0;

/** `git clone URL` in a container; the work tree's files when it worked. */
async function gitClone(container: string, url: string, env: Record<string, string> = {}): Promise<{ code: number; stderr: string; files?: Record<string, string> }> {
  const dir = `/tmp/clone-${++cloneCount}`;
  const r = await run('docker', ['exec', ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), container, 'git', 'clone', '-q', url, dir], 120_000);
  if (r.code !== 0) return { code: r.code, stderr: r.stderr };
  const tree = await runOk('docker', ['exec', container, 'python3', '/t/tree.py', dir]);
  return { code: 0, stderr: r.stderr, files: JSON.parse(tree) as Record<string, string> };
}

const withCredentials = (host: string, password = GIT.password): string => `https://${GIT.user}:${password}@${host}/${GIT.repo}.git`;

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

async function startClient(network: string, ip: string, options: { image?: string; args?: string[] } = {}): Promise<string> {
  const name = uniqueName('inet-client');
  containers.push(name);
  await runOk('docker', [
    'run', '-d', '--name', name, '--label', `${E2E_PID_LABEL}=${process.pid}`, '--network', network, '--ip', ip, '-v', `${workDir}:/t:ro`,
    ...(options.args ?? []), options.image ?? PY_IMAGE, 'sleep', 'infinity',
  ]);
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
    await ensureGitImage();
    writeFileSync(join(workDir, 'probe.py'), PROBE_PY);
    writeFileSync(join(workDir, 'fetch.py'), FETCH_PY);
    writeFileSync(join(workDir, 'tree.py'), TREE_PY);
    writeFileSync(join(workDir, 'portfwd.py'), PORTFWD_PY);
    writeFileSync(join(workDir, 'ca.pem'), pki.ca.certificatePem);
    writeFileSync(join(workDir, 'test-ca.pem'), inet.testCaPem);
    await inet.start({ 'allowed.test': 10, '*.wild.test': 11, 'deep.x.wild.test': 12 });
    await inet.startOrigin('plain', inet.address(10), [22, 80]);
    await inet.startOrigin('secure', inet.address(11), [443], { tls: true });
    gitOrigin = await inet.startGitOrigin({ ...GIT, ip: 20 });
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

  describe('the git origin', () => {
    let gitClient = '';
    const gitEnv = { GIT_SSL_CAINFO: '/t/test-ca.pem', GIT_TERMINAL_PROMPT: '0' };

    before(async () => {
      // The internet's resolver as its DNS: git.test is found the way CoreDNS's upstream finds it.
      gitClient = await startClient(inet.network!.name, inet.address(101), { image: GIT_IMAGE, args: ['--dns', inet.dnsIp] });
    });
    after(async () => {
      await removeContainer(gitClient);
    });

    test('the resolver answers its name with its address', async () => {
      assert.deepEqual(await probe(inetClient, 'dns', inet.dnsIp, GIT.name), { ok: true, rcode: 0, answers: [gitOrigin.ip] });
      assert.equal(gitOrigin.url, 'https://git.test/demo.git');
    });

    test('git clone over HTTPS with the credentials in the URL, trusting the test CA, gets the files; every request is recorded with its auth, never the password', async () => {
      const before = (await inet.gitRequests(GIT.name)).length;
      const r = await gitClone(gitClient, withCredentials(GIT.name), gitEnv);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.files, GIT.files);
      const requests = (await inet.gitRequests(GIT.name)).slice(before);
      assert.ok(requests.length >= 2, JSON.stringify(requests));
      assert.ok(requests.every((q) => q.peer === inet.address(101) && q.sni === GIT.name), JSON.stringify(requests));
      const refs = requests.find((q) => q.method === 'GET' && q.path === '/demo.git/info/refs' && q.auth === 'ok');
      assert.equal(refs?.status, 200, JSON.stringify(requests));
      assert.equal(refs?.query, 'service=git-upload-pack');
      assert.ok(requests.some((q) => q.method === 'POST' && q.path === '/demo.git/git-upload-pack' && q.auth === 'ok' && q.user === GIT.user && q.status === 200), JSON.stringify(requests));
      // Anything unauthenticated before (git's first try, to learn the scheme) was refused.
      assert.ok(requests.filter((q) => q.auth !== 'ok').every((q) => q.status === 401), JSON.stringify(requests));
      assert.ok(!(await runOk('docker', ['logs', gitOrigin.container])).includes(GIT.password), 'the password is never logged');
    });

    test('without credentials, or with a wrong password: 401 with WWW-Authenticate Basic, and the clone fails', async () => {
      const before = (await inet.gitRequests(GIT.name)).length;
      const plain = await run('docker', ['exec', gitClient, 'python3', '/t/fetch.py', `${gitOrigin.url}/info/refs?service=git-upload-pack`, '/t/test-ca.pem']);
      assert.deepEqual(JSON.parse(plain.stdout), { ok: true, status: 401, wwwAuthenticate: 'Basic realm="git at git.test"' });
      const right = await run('docker', ['exec', gitClient, 'python3', '/t/fetch.py', `${gitOrigin.url}/info/refs?service=git-upload-pack`, '/t/test-ca.pem', GIT.user, GIT.password]);
      assert.deepEqual(JSON.parse(right.stdout), { ok: true, status: 200, wwwAuthenticate: null });

      const none = await gitClone(gitClient, gitOrigin.url, gitEnv);
      assert.notEqual(none.code, 0);
      assert.match(none.stderr, /could not read Username|terminal prompts disabled/, none.stderr);
      const wrong = await gitClone(gitClient, withCredentials(GIT.name, 'not-the-password'), gitEnv);
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /Authentication failed/, wrong.stderr);

      const requests = (await inet.gitRequests(GIT.name)).slice(before);
      const refused = requests.filter((q) => q.auth !== 'ok');
      assert.ok(refused.every((q) => q.method === 'GET' && q.path === '/demo.git/info/refs' && q.status === 401), JSON.stringify(refused));
      assert.ok(refused.filter((q) => q.auth === 'none').length >= 2, `fetch.py and the clone without credentials: ${JSON.stringify(refused)}`);
      assert.ok(refused.some((q) => q.auth === 'wrong' && q.user === GIT.user), JSON.stringify(refused));
      assert.deepEqual(requests.filter((q) => q.auth === 'ok').map((q) => q.status), [200], 'only fetch.py with the password got in');
      assert.ok(!requests.some((q) => q.method === 'POST'), 'nothing was fetched');
    });

    test('a client that does not trust the test CA refuses the origin', async () => {
      const r = await gitClone(gitClient, withCredentials(GIT.name), { GIT_SSL_CAINFO: '/etc/ssl/certs/ca-certificates.crt', GIT_TERMINAL_PROMPT: '0' });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /certificate/i, r.stderr);
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

  describe('the forwarding Envoy stand-in', () => {
    const fwdDir = join(workDir, 'envoy-fwd');
    const fwdIp = () => `${side.prefix}.201`;
    let fwd = '';
    let sideGit = '';
    let sshPort = 0;
    const FWD_POLICY = `
security:
  firewall:
    add_domains: [git.test, mirror.test, nx.test, .wild.test]
    rules:
      - dst: allowed.test
        proto: ssh
`;

    before(async () => {
      if (!inet.routes.some((r) => r.includes(side.subnet))) await inet.routeFrom(side.subnet);
      // mirror.test: the git origin's address under a name its certificate does not carry.
      inet.setZone({ 'allowed.test': 10, '*.wild.test': 11, 'deep.x.wild.test': 12, 'mirror.test': gitOrigin.ip });
      const rendered = render(FWD_POLICY);
      sshPort = rendered.allocation['tcp:allowed.test:22']!;
      writeEnvoyDir(rendered.files, fwdDir);
      fwd = await startEnvoyStandin({ network: side.name, ip: fwdIp(), configDir: fwdDir, image: await inet.forwardingEnvoyImage() });
      containers.push(fwd);
      // A client that trusts the firewall CA that signed the stand-in's certificate, and whose git.test:443
      // is the stand-in's front listener (through a relay on its loopback: no datapath here).
      sideGit = await startClient(side.name, `${side.prefix}.51`, { image: GIT_IMAGE, args: ['--add-host', `${GIT.name}:127.0.0.1`] });
      await runOk('docker', ['exec', '-d', sideGit, 'python3', '/t/portfwd.py', '443', fwdIp(), '10000']);
      const listening = "import socket,time\nfor _ in range(50):\n    try:\n        socket.socket().bind(('127.0.0.1', 443))\n    except OSError:\n        break\n    time.sleep(0.1)\nelse:\n    raise SystemExit('the relay does not listen')";
      await runOk('docker', ['exec', sideGit, 'python3', '-c', listening]);
    });
    after(async () => {
      // Before the internet's stop(): it removes the forwarding image, which no container may still use.
      await removeContainer(sideGit);
      await removeContainer(fwd);
    });

    test('a tcp_proxy chain connects to the cluster endpoint, resolved with the internet resolver, and pipes both ways', async () => {
      assert.deepEqual(await probe(sideClient, 'tcp', fwdIp(), String(sshPort)), { ok: true, banner: 'origin-plain:22' });
      const rec = await waitForEnvoyRecord(fwd, (r) => r.kind === 'conn' && r.port === sshPort);
      assert.deepEqual([rec.verdict, rec.upstreamHost, rec.forwarded, rec.peer], ['accepted', 'allowed.test:22', `${inet.address(10)}:22`, `${side.prefix}.50`]);
      const c = await inet.waitForConnection('plain', (c) => c.port === 22 && c.peer === fwdIp());
      assert.equal(c.local, inet.address(10));
      await inet.waitForQuery((q) => q.name === 'allowed.test' && q.peer === fwdIp(), 'the stand-in asked the internet resolver');
    });

    test('TLS-inspected HTTPS: git clone through the stand-in reaches the git origin from the stand-in, with auth, verified upstream', async () => {
      const before = (await inet.gitRequests(GIT.name)).length;
      const r = await gitClone(sideGit, withCredentials(GIT.name), { GIT_SSL_CAINFO: '/t/ca.pem', GIT_TERMINAL_PROMPT: '0' });
      assert.equal(r.code, 0, `${r.stderr}\n${JSON.stringify((await envoyRecords(fwd)).slice(-5))}`);
      assert.deepEqual(r.files, GIT.files);
      const requests = (await inet.gitRequests(GIT.name)).slice(before);
      assert.ok(requests.length >= 2 && requests.every((q) => q.peer === fwdIp() && q.sni === GIT.name), JSON.stringify(requests));
      assert.ok(requests.some((q) => q.method === 'POST' && q.path === '/demo.git/git-upload-pack' && q.auth === 'ok' && q.status === 200), JSON.stringify(requests));
      const conns = (await envoyRecords(fwd)).filter((x) => x.kind === 'conn' && x.sni === GIT.name && x.peer === `${side.prefix}.51`);
      assert.ok(conns.length >= 1, JSON.stringify(conns));
      for (const c of conns) {
        assert.deepEqual([c.chain, c.tls, c.cluster, c.upstreamHost, c.upstreamSni, c.forwarded], ['tls:git.test:443', 'terminated', 'upstream_https', 'git.test:443', 'git.test', `${gitOrigin.ip}:443`], JSON.stringify(c));
        assert.ok(c.status === 200 || c.status === 401, `the first response's status: ${JSON.stringify(c)}`);
      }
      // The access log, as the control plane reads it: allowed, with the upstream's address and status.
      const lines = (await envoyAccessLog(fwd)).filter((l) => l.sni === GIT.name && String(l.client).startsWith(`${side.prefix}.51:`));
      assert.ok(lines.length >= 1 && lines.every((l) => l.upstream === `${gitOrigin.ip}:443` && l.details === 'via_upstream'), JSON.stringify(lines));
      const events = lines.map((l) => fromEnvoyAccessLog(JSON.stringify(l))!);
      assert.ok(events.every((e) => e.verdict === 'allowed' && e.domain === GIT.name), JSON.stringify(events));
    });

    test('upstream failures are answered 503 by the stand-in: a name the resolver does not know, a certificate for another name, no TLS at all', async () => {
      const cases = [
        ['nx.test', /nx\.test: rcode 3/],
        ['mirror.test', /TLS: .*(CERTIFICATE_VERIFY_FAILED|match|mismatch)/i],
        ['a.wild.test', /TLS: /],
      ] as const;
      for (const [name, why] of cases) {
        const r = await probe(sideClient, 'tls', fwdIp(), '10000', name, '/t/ca.pem', name);
        assert.deepEqual([r.ok, r.status], [true, 503], `${name}: ${JSON.stringify(r)}`);
        const rec = await waitForEnvoyRecord(fwd, (x) => x.kind === 'conn' && x.sni === name);
        assert.match(rec.upstreamError ?? '', why, JSON.stringify(rec));
        assert.equal(rec.forwarded, undefined);
      }
    });

    test('a denied Host inside an allowed chain, and an unknown SNI, behave as without forwarding', async () => {
      const before = (await inet.gitRequests(GIT.name)).length;
      assert.deepEqual(await probe(sideClient, 'tls', fwdIp(), '10000', GIT.name, '/t/ca.pem', 'evil.test'), { ok: true, status: 403, body: 'Forbidden\n' });
      const rec = await waitForEnvoyRecord(fwd, (x) => x.kind === 'conn' && x.sni === GIT.name && x.host === 'evil.test');
      assert.deepEqual([rec.route, rec.status, rec.forwarded], ['deny', 403, undefined]);
      const reset = await probe(sideClient, 'tls', fwdIp(), '10000', 'evil.test');
      assert.deepEqual([reset.ok, reset.errno], [false, 'ECONNRESET']);
      assert.equal((await inet.gitRequests(GIT.name)).length, before, 'nothing reached the origin');
    });

    test('the forwarding stand-in logged no error of its own', async () => {
      const errors = (await envoyRecords(fwd)).filter((r) => ['error', 'config-error', 'bind-error', 'fatal'].includes(r.kind));
      assert.deepEqual(errors, []);
    });
  });

  describe('through the firewall: an agent clones from the git origin (control plane, CoreDNS, datapath, forwarding stand-in)', { timeout: 900_000 }, () => {
    const names = stackNames(`clawker-e2e-git-${process.pid}`);
    const pinDir = join(BPFFS_DIR, names.prefix);
    const dataDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-inet-fw-data-'));
    const agentDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-inet-fw-agent-'));
    const settings = join(dataDir, 'settings.yaml');
    let envoyImage = '';
    let images: { coredns: string; controlplane: string };
    let status: Status;
    let agent = '';
    let agentIp = '';
    const docker = new Docker({ socketPath: '/var/run/docker.sock' });

    const cli = (...args: string[]) =>
      clawker(args, {
        env: {
          ...process.env,
          ...testStackEnv({ dataDir, stack: names.prefix, pinDir, settings, images: { ...images, envoy: envoyImage } }),
          CLAWKER_DRAIN_AFTER_MS: '600000',
        },
      });
    const cliOk = async (...args: string[]) => {
      const r = await cli(...args);
      assert.equal(r.code, 0, `clawker ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };

    before(async () => {
      await requireTestbed();
      await runOk('node', [join(ROOT, 'scripts', 'build.mjs')], 120_000);
      images = await ensureStackImages();
      envoyImage = await inet.forwardingEnvoyImage();
      writeFileSync(settings, `firewall:\n  upstream_dns:\n    - ${inet.dnsIp}\n`);
      await cliOk('firewall', 'add', GIT.name);
      const up = await cli('firewall', 'up', '--json');
      assert.equal(up.code, 0, `firewall up failed:\n${up.stderr}\n${up.stdout}`);
      status = JSON.parse(up.stdout) as Status;
      await inet.routeFrom(status.network.subnet);
      // The firewall CA, as an agent image would trust it.
      copyFileSync(join(dataDir, 'firewall', 'ca', 'ca.pem'), join(agentDir, 'clawker-ca.pem'));
      const { name, create } = agentContainerSpec({
        stack: names,
        project: 'e2e',
        agent: 'git',
        image: GIT_IMAGE,
        cmd: ['sleep', 'infinity'],
        workspace: agentDir,
        settings: { ...DEFAULT_PROJECT_SETTINGS, enableHostProxy: false, env: { GIT_SSL_CAINFO: '/agent/clawker-ca.pem', GIT_TERMINAL_PROMPT: '0' } },
        firewall: { enabled: true, corednsIp: status.network.coredns, cgroupParent: agentsCgroupParent('cgroupfs', names.agentsCgroup) },
        supervised: false,
        extraLabels: { [E2E_PID_LABEL]: String(process.pid) },
      });
      agent = name;
      const container = await docker.createContainer({ name, ...create, HostConfig: { ...create.HostConfig, Binds: [`${agentDir}:/agent:ro`, `${workDir}:/t:ro`] } });
      await container.start();
      agentIp = (await runOk('docker', ['inspect', '-f', `{{(index .NetworkSettings.Networks "${names.network}").IPAddress}}`, agent])).trim();
      const deadline = Date.now() + 20_000;
      for (;;) {
        const s = JSON.parse((await cli('firewall', 'status', '--json')).stdout) as Status;
        if (s.agents.some((a) => a.agent === 'git' && a.state === 'enrolled')) break;
        if (Date.now() > deadline) throw new Error(`agent not enrolled: ${JSON.stringify(s.agents)}`);
        await sleep(200);
      }
    });

    after(async () => {
      await cli('firewall', 'down');
      for (const n of [agent, names.controlplane, names.envoy, names.coredns]) if (n) await run('docker', ['rm', '-f', n]);
      await run('docker', ['network', 'rm', names.network]);
      await removeStackVolumes(names);
      rmSync(pinDir, { recursive: true, force: true });
      await removeCgroupDirs(names.agentsCgroup);
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(agentDir, { recursive: true, force: true });
    });

    test('git clone with credentials through the firewall gets the files; the origin sees the proxy (.200) with auth, never the agent', async () => {
      const before = (await inet.gitRequests(GIT.name)).length;
      const r = await gitClone(agent, withCredentials(GIT.name));
      assert.equal(r.code, 0, `${r.stderr}\nproxy: ${JSON.stringify((await envoyRecords(names.envoy)).slice(-5))}`);
      assert.deepEqual(r.files, GIT.files);
      const requests = (await inet.gitRequests(GIT.name)).slice(before);
      assert.ok(requests.length >= 2, JSON.stringify(requests));
      assert.ok(requests.every((q) => q.peer === status.network.envoy), `every request from the proxy at ${status.network.envoy}: ${JSON.stringify(requests)}`);
      assert.ok(status.network.envoy.endsWith('.200'));
      assert.ok(requests.some((q) => q.method === 'POST' && q.path === '/demo.git/git-upload-pack' && q.auth === 'ok' && q.user === GIT.user && q.status === 200), JSON.stringify(requests));
      const conns = (await envoyRecords(names.envoy)).filter((x) => x.kind === 'conn' && x.sni === GIT.name);
      assert.ok(conns.length >= 1 && conns.every((c) => c.peer === agentIp && c.port === 10000 && c.forwarded === `${gitOrigin.ip}:443`), JSON.stringify(conns));
      assert.ok(conns.every((c) => c.status === 200 || c.status === 401), `the first response's status is recorded: ${JSON.stringify(conns)}`);
      assert.ok(!(await inet.queries()).some((q) => q.peer === agentIp), 'the agent never asked the internet resolver itself');
      // The control plane reads the stand-in's access log as Envoy's: allowed proxy events for git.test, to the origin.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const events = (await cliOk('firewall', 'events', '--json', '--tail', '2000')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
        const allowed = events.filter((e) => e.source === 'proxy' && e.verdict === 'allowed' && e.domain === GIT.name);
        if (allowed.some((e) => JSON.stringify(e.dst).includes(gitOrigin.ip))) break;
        if (Date.now() > deadline) throw new Error(`no allowed proxy event for ${GIT.name} to ${gitOrigin.ip}: ${JSON.stringify(events.slice(-5))}`);
        await sleep(250);
      }
    });

    test('without credentials the clone fails on the 401 the origin answered through the proxy', async () => {
      const before = (await inet.gitRequests(GIT.name)).length;
      const r = await gitClone(agent, gitOrigin.url);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /could not read Username|terminal prompts disabled/, r.stderr);
      const requests = (await inet.gitRequests(GIT.name)).slice(before);
      assert.deepEqual(requests.map((q) => [q.peer, q.auth, q.status]), [[status.network.envoy, 'none', 401]]);
    });
  });

  describe('stop', () => {
    test('removes the containers, the network and the iptables rules', async () => {
      const net = inet.network!;
      await removeContainer(inetClient);
      const origin = (await runOk('docker', ['ps', '-a', '--filter', `network=${net.name}`, '--format', '{{.Names}}'])).trim().split('\n');
      assert.equal(origin.length, 4, `the resolver and three origins: ${origin.join(',')}`);
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
