/**
 * The host proxy with real Docker and real git: the launcher starts the daemon (from src, under tsx)
 * on the gateway of a bridge network made for the run (named like a stack's clawker-net, for a
 * stack prefix of the run's own), and containers on that network call it with bash's /dev/tcp.
 *
 * The daemon's HOME is a temporary directory whose git config uses the `store` helper with one
 * credential; its browser opener is a script that records the URL (CLAWKER_HOSTPROXY_OPENER). No
 * firewall or eBPF here: the datapath exemption for the port is covered by the datapath suites.
 *
 *   node --import tsx --test test/e2e/hostProxy.test.ts
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HOST_PROXY_PORT, HOST_PROXY_TOKEN_HEADER } from '../../src/core/agents/agentContract';
import { LABEL_AGENT, LABEL_COMPONENT, LABEL_MANAGED, LABEL_STACK } from '../../src/core/stack/labels';
import { stackNames } from '../../src/core/stack/stackNames';
import { hostProxyToken } from '../../src/hostproxy/token';
import {
  ensureHostProxy, hostProxyDir, hostProxyHealth, loadOrCreateHostProxySecret, readHostProxyPidFile, stopHostProxy,
} from '../../src/platform/hostProxyLauncher';
import {
  BASE_IMAGE, E2E_PID_LABEL, pidAlive, removeContainer, removeObjectsOfDeadRuns, requireTestbed, run, runOk, sweepStale, uniqueName,
} from './testbed';

const PASSWORD = 's3cret-PASS';
const PREFIX = uniqueName('hp'); // a stack prefix of the run's own: clawker-e2e-hp-<pid>-<hex>
const NETWORK = stackNames(PREFIX).network;

const work = mkdtempSync(join(tmpdir(), `clawker-e2e-hostproxy-${process.pid}-`));
const dataDir = join(work, 'data');
const home = join(work, 'home');
const openerDir = join(work, 'opener');
const openedFile = join(openerDir, 'opened.txt');
const containers: string[] = [];
let gateway = '';
let secret: Buffer;
let daemonPid = 0;

/** A request from inside a container with bash's /dev/tcp (the base image has no curl). */
const HTTP_SH = `
set -eu
export LC_ALL=C
host=$1 port=$2 method=$3 path=$4 token=$5 body=$6
exec 3<>"/dev/tcp/$host/$port"
{
  printf '%s %s HTTP/1.1\\r\\nHost: %s:%s\\r\\nConnection: close\\r\\n' "$method" "$path" "$host" "$port"
  if [ -n "$token" ]; then printf '${HOST_PROXY_TOKEN_HEADER}: %s\\r\\n' "$token"; fi
  if [ -n "$body" ]; then printf 'Content-Type: application/json\\r\\nContent-Length: %s\\r\\n' "\${#body}"; fi
  printf '\\r\\n%s' "$body"
} >&3
timeout 45 cat <&3
`;

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

async function call(from: string, method: string, path: string, token: string, body?: unknown): Promise<Reply> {
  const r = await run('docker', [
    'exec', from, 'bash', '-c', HTTP_SH, 'http', gateway, String(HOST_PROXY_PORT), method, path, token, body === undefined ? '' : JSON.stringify(body),
  ], 60_000);
  const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*\r\n[\s\S]*?\r\n\r\n([\s\S]*)$/.exec(r.stdout);
  if (!m) throw new Error(`no HTTP answer from the host proxy (exit ${r.code}): ${r.stderr.trim()} ${r.stdout.slice(0, 200)}`);
  return { status: Number(m[1]), body: m[2] ? (JSON.parse(m[2]) as Record<string, unknown>) : {} };
}

const credential = (from: string, token: string, operation: string, fields: Record<string, string>) =>
  call(from, 'POST', '/v1/git/credential', token, { operation, fields });

async function createNetwork(): Promise<string> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const prefix = `10.${150 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}`;
    const r = await run('docker', [
      'network', 'create', '--driver', 'bridge', '--label', `${E2E_PID_LABEL}=${process.pid}`,
      '--subnet', `${prefix}.0/24`, '--gateway', `${prefix}.1`, NETWORK,
    ]);
    if (r.code === 0) return `${prefix}.1`;
    if (!/overlap/i.test(r.stderr)) throw new Error(`docker network create ${NETWORK}: ${r.stderr.trim()}`);
  }
  throw new Error('no free 10.x.y.0/24 subnet for the test network after 20 attempts');
}

/** A container on the run's network; `agent` adds the labels of one of the run's stack's agents. */
async function startContainer(what: string, agent: boolean): Promise<string> {
  const name = uniqueName(what);
  containers.push(name);
  const labels = agent
    ? [`${LABEL_MANAGED}=true`, `${LABEL_COMPONENT}=agent`, `${LABEL_STACK}=${PREFIX}`, `${LABEL_AGENT}=${what}`]
    : [];
  await runOk('docker', [
    'run', '-d', '--name', name, '--network', NETWORK, '--label', `${E2E_PID_LABEL}=${process.pid}`,
    ...labels.flatMap((l) => ['--label', l]), BASE_IMAGE, 'sleep', 'infinity',
  ]);
  return name;
}

/** Sets environment variables for the daemon the launcher starts (it inherits ours), then restores them. */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Daemons left by a killed run of this suite: their stack prefix names the run's pid. */
function stopDaemonsOfDeadRuns(): void {
  if (process.platform !== 'linux') return;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    const m = /hostproxy\S* .*--stack-prefix clawker-e2e-hp-(\d+)-[0-9a-f]+/.exec(cmd);
    if (m && !pidAlive(Number(m[1]))) process.kill(Number(entry), 'SIGTERM');
  }
  for (const entry of readdirSync(tmpdir())) {
    const m = /^clawker-e2e-hostproxy-(\d+)-/.exec(entry);
    if (m && !pidAlive(Number(m[1]))) rmSync(join(tmpdir(), entry), { recursive: true, force: true });
  }
}

let agentA = '';
let agentB = '';
let stranger = '';

before(async () => {
  await requireTestbed(['docker daemon', 'base image']);
  await sweepStale();
  await removeObjectsOfDeadRuns('network', E2E_PID_LABEL);
  stopDaemonsOfDeadRuns();

  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, '.gitconfig'), '[credential]\n\thelper = store\n');
  writeFileSync(join(home, '.git-credentials'), `https://alice:${PASSWORD}@git.test\n`, { mode: 0o600 });
  mkdirSync(openerDir, { recursive: true });
  writeFileSync(join(openerDir, 'record-url'), `#!/bin/sh\nprintf '%s\\n' "$1" >> "$(dirname "$0")/opened.txt"\n`, { mode: 0o755 });

  gateway = await createNetwork();
  [agentA, agentB, stranger] = await Promise.all([startContainer('hp-agent-a', true), startContainer('hp-agent-b', true), startContainer('hp-plain', false)]);
  secret = await loadOrCreateHostProxySecret(dataDir);

  const progress: string[] = [];
  const started = await withEnv(
    {
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      GIT_CONFIG_NOSYSTEM: '1',
      CLAWKER_HOSTPROXY_OPENER: join(openerDir, 'record-url'),
    },
    () => ensureHostProxy({ dataDir, listenAddress: gateway, stackPrefix: PREFIX, onProgress: (m) => progress.push(m) }),
  );
  assert.equal(started.url, `http://${gateway}:${HOST_PROXY_PORT}`);
  assert.equal(started.started, true);
  assert.ok(progress.some((m) => /starting/.test(m)));
  daemonPid = started.pid;
});

after(async () => {
  await stopHostProxy(dataDir).catch(() => undefined);
  if (daemonPid && pidAlive(daemonPid)) process.kill(daemonPid, 'SIGKILL');
  for (const name of containers) await removeContainer(name).catch(() => undefined);
  await run('docker', ['network', 'rm', NETWORK]);
  rmSync(work, { recursive: true, force: true });
});

test('launcher: a second ensure finds the running daemon (pid file + health)', async () => {
  const again = await ensureHostProxy({ dataDir, listenAddress: gateway, stackPrefix: PREFIX });
  assert.deepEqual(again, { url: `http://${gateway}:${HOST_PROXY_PORT}`, pid: daemonPid, started: false });
  assert.deepEqual(readHostProxyPidFile(dataDir), { pid: daemonPid, listenAddress: gateway, port: HOST_PROXY_PORT, stackPrefix: PREFIX });
  assert.equal(await hostProxyHealth(again.url), daemonPid);
});

test('git credential get: the right token of a labelled agent gets the host credential', async () => {
  const token = hostProxyToken(secret, agentA);
  const got = await credential(agentA, token, 'get', { protocol: 'https', host: 'git.test' });
  assert.deepEqual(got, { status: 200, body: { fields: { username: 'alice', password: PASSWORD } } });
  const none = await credential(agentA, token, 'get', { protocol: 'https', host: 'nothing.test' });
  assert.equal(none.status, 404, 'no credential: 404, and git did not prompt');
});

test('git credential store and erase reach the host helper', async () => {
  const token = hostProxyToken(secret, agentA);
  assert.equal((await credential(agentA, token, 'store', { protocol: 'https', host: 'other.test', username: 'bob', password: 'bob-PASS-2' })).status, 200);
  assert.match(readFileSync(join(home, '.git-credentials'), 'utf8'), /https:\/\/bob:bob-PASS-2@other\.test/);
  assert.deepEqual(await credential(agentA, token, 'get', { protocol: 'https', host: 'other.test' }), {
    status: 200,
    body: { fields: { username: 'bob', password: 'bob-PASS-2' } },
  });
  assert.equal((await credential(agentA, token, 'erase', { protocol: 'https', host: 'other.test', username: 'bob' })).status, 200);
  assert.equal((await credential(agentA, token, 'get', { protocol: 'https', host: 'other.test' })).status, 404);
});

test('refused: wrong token, another container\'s token, an unlabelled container, protocol http', async () => {
  const tokenA = hostProxyToken(secret, agentA);
  const get = { protocol: 'https', host: 'git.test' };
  assert.deepEqual(await credential(agentA, 'f'.repeat(64), 'get', get), { status: 403, body: { error: 'wrong token' } });
  assert.deepEqual(await credential(agentA, '', 'get', get), { status: 403, body: { error: 'missing token' } });
  assert.equal((await credential(agentB, tokenA, 'get', get)).status, 403, 'a token is valid for its own container only');
  assert.equal((await credential(agentB, hostProxyToken(secret, agentB), 'get', get)).status, 200, 'B with its own token is served');
  assert.deepEqual(await credential(stranger, hostProxyToken(secret, stranger), 'get', get), { status: 403, body: { error: 'not an agent container' } });
  const http = await credential(agentA, tokenA, 'get', { protocol: 'http', host: 'git.test' });
  assert.equal(http.status, 400);
  assert.match(String(http.body.error), /only protocol https/);
});

test('browser open: the injected opener records an https URL; file:// is refused', async () => {
  const token = hostProxyToken(secret, agentA);
  const url = 'https://github.com/login/device?user_code=ABCD-SECRETQ';
  assert.deepEqual(await call(agentA, 'POST', '/v1/browser/open', token, { url }), { status: 200, body: {} });
  for (let i = 0; i < 50 && !existsSync(openedFile); i++) await sleep(100);
  assert.equal(readFileSync(openedFile, 'utf8'), `${url}\n`);
  const file = await call(agentA, 'POST', '/v1/browser/open', token, { url: 'file:///etc/passwd' });
  assert.equal(file.status, 400);
  assert.equal((await call(stranger, 'POST', '/v1/browser/open', token, { url })).status, 403);
  await sleep(300);
  assert.equal(readFileSync(openedFile, 'utf8'), `${url}\n`, 'nothing else was opened');
});

test('the daemon log holds outcomes, never a password, token or full URL; stop ends the daemon', async () => {
  const logPath = join(hostProxyDir(dataDir), 'hostproxy.log');
  const log = readFileSync(logPath, 'utf8');
  for (const secretText of [PASSWORD, 'bob-PASS-2', hostProxyToken(secret, agentA), hostProxyToken(secret, agentB), 'SECRETQ', 'user_code', secret.toString('hex')]) {
    assert.ok(!log.includes(secretText), `the log holds ${secretText}`);
  }
  assert.match(log, new RegExp(`git-credential agent=${agentA} operation=get protocol=https host=git\\.test outcome=found`));
  assert.match(log, /outcome=none/);
  assert.match(log, /403 from \d+\.\d+\.\d+\.\d+: wrong token/);
  assert.match(log, /403 from \d+\.\d+\.\d+\.\d+: not an agent container/);
  assert.match(log, new RegExp(`browser-open agent=${agentA} host=github\\.com outcome=opened`));
  assert.match(log, /^\d{4}-\d\d-\d\dT\S+Z \[hostproxy\] listening on /m);

  assert.equal(await stopHostProxy(dataDir), true);
  assert.equal(pidAlive(daemonPid), false);
  assert.equal(readHostProxyPidFile(dataDir), undefined);
  assert.match(readFileSync(logPath, 'utf8'), /SIGTERM: stopping/);
  assert.equal(await stopHostProxy(dataDir), false);
});

test("another data dir's daemon on the address is named, not a bare EADDRINUSE; a daemon outlives no agent by more than its grace", { timeout: 60_000 }, async () => {
  const otherDir = join(work, 'other-data');
  await loadOrCreateHostProxySecret(otherDir);
  const other = await withEnv({ CLAWKER_HOSTPROXY_IDLE_POLL_MS: '200', CLAWKER_HOSTPROXY_IDLE_GRACE_MS: '1500' }, () =>
    ensureHostProxy({ dataDir: otherDir, listenAddress: gateway, stackPrefix: PREFIX }),
  );
  try {
    await assert.rejects(ensureHostProxy({ dataDir, listenAddress: gateway, stackPrefix: PREFIX }), {
      message: `host proxy: http://${gateway}:${HOST_PROXY_PORT} is already served by another Clawker host proxy (pid ${other.pid}), started with another data dir; stop it with \`clawker host-proxy stop\` and that CLAWKER_DATA_DIR, or kill ${other.pid}`,
    });
    // The stack's agents run: the daemon stays past its grace.
    await sleep(2_500);
    assert.equal(pidAlive(other.pid), true, 'agents run: the daemon stays');
    // The last agents stop: it ends by itself within the grace and a poll or two.
    await runOk('docker', ['stop', '-t', '0', agentA, agentB]);
    const stoppedAt = Date.now();
    while (pidAlive(other.pid) && Date.now() - stoppedAt < 15_000) await sleep(100);
    assert.equal(pidAlive(other.pid), false, 'no agent for the grace: the daemon exited');
    assert.ok(Date.now() - stoppedAt >= 1_300, `not before its grace (${Date.now() - stoppedAt} ms)`);
    assert.equal(readHostProxyPidFile(otherDir), undefined, 'and removed its pid file');
    assert.match(readFileSync(join(hostProxyDir(otherDir), 'hostproxy.log'), 'utf8'), /no agent of the stack has run for [12] s: stopping/);
  } finally {
    await stopHostProxy(otherDir).catch(() => undefined);
  }
});
