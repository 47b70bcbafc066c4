/**
 * The host proxy without Docker: request validation, git's credential format, tokens, the agent
 * directory's matching, the git runner (against a fake git), the opener choice, and the HTTP server
 * in-process (fake agents, fake git, fake opener), whose log must never carry a secret.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { HOST_PROXY_TOKEN_HEADER } from '../../src/core/agents/agentContract';
import { LABEL_COMPONENT, LABEL_MANAGED, LABEL_STACK } from '../../src/core/stack/labels';
import { AgentDirectory, type AgentIdentity, normalizeAddress } from '../../src/hostproxy/agents';
import { ENV_OPENER, resolveOpener } from '../../src/hostproxy/browser';
import { gitArgv, gitCredentialRunner, gitEnvironment } from '../../src/hostproxy/gitCredential';
import { formatLine, sanitize, stdoutLog } from '../../src/hostproxy/log';
import { createHostProxyServer, MAX_BODY_BYTES } from '../../src/hostproxy/server';
import { hostProxyToken, tokensEqual } from '../../src/hostproxy/token';
import {
  type CredentialFields, formatCredential, MAX_URL_LENGTH, parseCredential, validateBrowserRequest, validateCredentialFields,
  validateCredentialRequest,
} from '../../src/hostproxy/validate';
import { hostProxyUrl, loadOrCreateHostProxySecret, readHostProxySecret } from '../../src/platform/hostProxyLauncher';
import { fakeGit as makeFakeGit, type FakeGitMode } from '../helpers/fakeGit';

const made: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-hostproxy-unit-'));
  made.push(dir);
  return dir;
};
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const SECRET = Buffer.alloc(32, 7);

// ---- tokens ---------------------------------------------------------------------------------------

test('token: HMAC-SHA256 of the container name, hex; per container; leading / ignored', () => {
  const t = hostProxyToken(SECRET, 'clawker-myproj-dev');
  assert.equal(t, createHmac('sha256', SECRET).update('clawker-myproj-dev').digest('hex'));
  assert.match(t, /^[0-9a-f]{64}$/);
  assert.equal(hostProxyToken(SECRET, '/clawker-myproj-dev'), t);
  assert.notEqual(hostProxyToken(SECRET, 'clawker-myproj-other'), t);
  assert.notEqual(hostProxyToken(Buffer.alloc(32, 8), 'clawker-myproj-dev'), t);
  assert.throws(() => hostProxyToken(Buffer.alloc(4), 'x'), /too short/);
});

test('token compare: exact match only, any other length, type or value is false', () => {
  const t = hostProxyToken(SECRET, 'a');
  assert.equal(tokensEqual(t, t), true);
  assert.equal(tokensEqual(t.toUpperCase(), t), false);
  assert.equal(tokensEqual(`${t.slice(0, -1)}0` === t ? `${t.slice(0, -1)}1` : `${t.slice(0, -1)}0`, t), false);
  assert.equal(tokensEqual(t.slice(1), t), false);
  assert.equal(tokensEqual(`${t}0`, t), false);
  assert.equal(tokensEqual('', t), false);
  assert.equal(tokensEqual(undefined, t), false);
  assert.equal(tokensEqual([t], t), false);
});

test('secret: 32 bytes, created once, 0600 in a 0700 directory; refused when others can read it', async () => {
  const dataDir = tempDir();
  const a = await loadOrCreateHostProxySecret(dataDir);
  const b = await loadOrCreateHostProxySecret(dataDir);
  assert.equal(a.length, 32);
  assert.deepEqual(a, b);
  if (process.platform !== 'win32') {
    assert.equal(statSync(join(dataDir, 'hostproxy')).mode & 0o777, 0o700);
    assert.equal(statSync(join(dataDir, 'hostproxy', 'secret')).mode & 0o777, 0o600);
    chmodSync(join(dataDir, 'hostproxy', 'secret'), 0o644);
    assert.throws(() => readHostProxySecret(dataDir), /readable by other users/);
  }
  const concurrent = tempDir();
  const all = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateHostProxySecret(concurrent)));
  for (const s of all) assert.deepEqual(s, all[0]);
});

test('hostProxyUrl: http://<gateway>:18374', () => {
  assert.equal(hostProxyUrl('172.30.0.1'), 'http://172.30.0.1:18374');
  assert.equal(hostProxyUrl('fd00::1', 1234), 'http://[fd00::1]:1234');
});

// ---- validation -----------------------------------------------------------------------------------

test('credential request: a valid get, store and erase', () => {
  const get = validateCredentialRequest({ operation: 'get', fields: { protocol: 'https', host: 'github.com', path: 'org/repo.git' } });
  assert.deepEqual(get, { ok: true, value: { operation: 'get', fields: { protocol: 'https', host: 'github.com', path: 'org/repo.git' } } });
  const store = validateCredentialRequest({ operation: 'store', fields: { protocol: 'https', host: 'git.test:8443', username: 'u', password: 'p=q w' } });
  assert.equal(store.ok, true);
  assert.equal(validateCredentialRequest({ operation: 'erase', fields: { protocol: 'https', host: '[fd00::1]:443', username: 'u' } }).ok, true);
});

test('credential request: refusals name the problem, never the value', () => {
  const cases: [unknown, RegExp][] = [
    [null, /object/],
    [[], /object/],
    [{ operation: 'get' }, /fields must be an object/],
    [{ operation: 'fill', fields: { protocol: 'https', host: 'h' } }, /operation/],
    [{ operation: 'get', fields: { protocol: 'https', host: 'h' }, extra: 1 }, /unknown key/],
    [{ operation: 'get', fields: { protocol: 'http', host: 'h' } }, /only protocol https/],
    [{ operation: 'get', fields: { protocol: 'ssh', host: 'h' } }, /only protocol https/],
    [{ operation: 'get', fields: { host: 'h' } }, /protocol is required/],
    [{ operation: 'get', fields: { protocol: 'https' } }, /host is required/],
    [{ operation: 'get', fields: { protocol: 'https', host: 'h', url: 'https://h' } }, /unknown field/],
    [{ operation: 'get', fields: { protocol: 'https', host: 'h', capability: 'authtype' } }, /unknown field/],
    [{ operation: 'get', fields: { protocol: 'https', host: 'h\nprotocol=http' } }, /newline/],
    [{ operation: 'get', fields: { protocol: 'https', host: 'h', path: 'a\0b' } }, /newline or NUL/],
    [{ operation: 'store', fields: { protocol: 'https', host: 'h', username: 'u', password: 'SECRET\nhost=evil' } }, /password contains a newline/],
    [{ operation: 'get', fields: { protocol: 'https', host: 'h', username: 'u\r' } }, /newline/],
    [{ operation: 'get', fields: { protocol: 'https', host: 'h', username: 5 } }, /must be a string/],
    [{ operation: 'get', fields: { protocol: 'https', host: '' } }, /host is empty/],
    [{ operation: 'get', fields: { protocol: 'https', host: 'a b' } }, /not a host name/],
    [{ operation: 'get', fields: { protocol: 'https', host: 'a/b' } }, /not a host name/],
    [{ operation: 'get', fields: { protocol: 'https', host: 'user@h' } }, /not a host name/],
    [{ operation: 'get', fields: { protocol: 'https', host: 'h:99999' } }, /invalid port/],
    [{ operation: 'get', fields: { protocol: 'https', host: 'h', password: 'x'.repeat(20000) } }, /too long/],
    [{ operation: 'store', fields: { protocol: 'https', host: 'h', username: 'u' } }, /store needs username and password/],
  ];
  for (const [body, pattern] of cases) {
    const r = validateCredentialRequest(body);
    assert.equal(r.ok, false, JSON.stringify(body).slice(0, 80));
    if (!r.ok) {
      assert.match(r.reason, pattern);
      assert.doesNotMatch(r.reason, /SECRET|evil/);
    }
  }
});

test('git credential format: round trip, values with = and spaces; refuses newlines', () => {
  const fields: CredentialFields = { protocol: 'https', host: 'git.test', path: 'a/b.git', username: 'alice', password: 'p=w d' };
  const text = formatCredential(fields);
  assert.equal(text, 'protocol=https\nhost=git.test\npath=a/b.git\nusername=alice\npassword=p=w d\n\n');
  assert.deepEqual(parseCredential(text), fields);
  assert.throws(() => formatCredential({ protocol: 'https', host: 'h', password: 'a\nb' }));
  // git's answer: unknown keys dropped, a blank line ends it, a repeated key keeps the last value.
  assert.deepEqual(parseCredential('protocol=https\nhost=h\ncapability[]=authtype\nusername=a\nusername=b\npassword=x\n\npassword=y\n'), {
    protocol: 'https',
    host: 'h',
    username: 'b',
    password: 'x',
  });
});

test('git credential format: round trip of any valid values (property)', () => {
  const value = fc.string({ minLength: 1, maxLength: 64 }).filter((s) => !/[\n\r\0]/.test(s));
  const host = fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?$/);
  fc.assert(
    fc.property(host, fc.option(value, { nil: undefined }), fc.option(value, { nil: undefined }), fc.option(value, { nil: undefined }), (h, path, username, password) => {
      const raw = { protocol: 'https', host: h, ...(path ? { path } : {}), ...(username ? { username } : {}), ...(password ? { password } : {}) };
      const v = validateCredentialFields(raw);
      assert.equal(v.ok, true);
      if (v.ok) assert.deepEqual(parseCredential(formatCredential(v.value)), raw);
    }),
  );
});

test('browser request: http(s) only, length-capped, no whitespace or control characters', () => {
  assert.deepEqual(validateBrowserRequest({ url: 'https://github.com/login/device?x=1' }), {
    ok: true,
    value: { url: 'https://github.com/login/device?x=1', host: 'github.com' },
  });
  assert.equal(validateBrowserRequest({ url: 'http://localhost:8080/cb' }).ok, true);
  const refused: [unknown, RegExp][] = [
    [{ url: 'file:///etc/passwd' }, /only http and https/],
    [{ url: 'javascript:alert(1)' }, /only http and https/],
    [{ url: 'data:text/html,hi' }, /only http and https/],
    [{ url: 'ftp://h/x' }, /only http and https/],
    [{ url: '-https://h' }, /not a valid URL/],
    [{ url: 'blob:https://h/x' }, /only http and https/],
    [{ url: 'https://h/a b' }, /whitespace/],
    [{ url: 'https://h/\n' }, /whitespace/],
    [{ url: ' https://h/' }, /whitespace/],
    [{ url: `https://h/${'a'.repeat(MAX_URL_LENGTH)}` }, /too long/],
    [{ url: '' }, /non-empty/],
    [{ url: 5 }, /non-empty/],
    [{ url: 'https://h/', target: '_blank' }, /unknown key/],
    [{ url: 'https://' }, /valid URL|no host/],
    ['https://h/', /object/],
  ];
  for (const [body, pattern] of refused) {
    const r = validateBrowserRequest(body);
    assert.equal(r.ok, false, JSON.stringify(body).slice(0, 60));
    if (!r.ok) assert.match(r.reason, pattern);
  }
});

// ---- opener, git runner ---------------------------------------------------------------------------

test('opener: injected program, then $BROWSER, then xdg-open / open; none elsewhere', () => {
  const url = 'https://h/x';
  assert.deepEqual(resolveOpener(url, { [ENV_OPENER]: '/tmp/rec', BROWSER: 'firefox' }, 'linux'), { command: '/tmp/rec', args: [url] });
  assert.deepEqual(resolveOpener(url, { BROWSER: 'firefox' }, 'linux'), { command: 'firefox', args: [url] });
  assert.deepEqual(resolveOpener(url, { BROWSER: ':chromium --new-window %s:firefox' }, 'linux'), { command: 'chromium', args: ['--new-window', url] });
  assert.deepEqual(resolveOpener(url, {}, 'linux'), { command: 'xdg-open', args: [url] });
  assert.deepEqual(resolveOpener(url, {}, 'darwin'), { command: 'open', args: [url] });
  assert.equal(resolveOpener(url, {}, 'win32'), undefined);
});

test('git environment: never prompts, no askpass, no tracing', () => {
  const env = gitEnvironment({ PATH: '/usr/bin', HOME: '/h', GIT_ASKPASS: '/code/askpass.sh', SSH_ASKPASS: 'x', GIT_TRACE: '/tmp/t', GIT_TRACE_CURL: '1', GIT_TERMINAL_PROMPT: '1' });
  assert.deepEqual(env, { PATH: '/usr/bin', HOME: '/h', GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never' });
  assert.deepEqual(gitArgv('get'), ['-c', 'core.askPass=', 'credential', 'fill']);
  assert.deepEqual(gitArgv('store'), ['-c', 'core.askPass=', 'credential', 'approve']);
  assert.deepEqual(gitArgv('erase'), ['-c', 'core.askPass=', 'credential', 'reject']);
});

/** A fake git in a directory of its own. */
const fakeGit = (mode: FakeGitMode) => makeFakeGit(tempDir(), mode);

test('git runner: argv, stdin in git format, no prompt; found / none / error / timeout', { skip: process.platform === 'win32' }, async () => {
  const fields: CredentialFields = { protocol: 'https', host: 'git.test', path: 'r.git' };
  const ok = fakeGit('answer');
  assert.deepEqual(await gitCredentialRunner({ git: ok.git, env: { PATH: process.env.PATH, GIT_ASKPASS: '/x' } })('get', fields), {
    kind: 'found',
    username: 'alice',
    password: 'pa=ss word',
  });
  assert.equal(readFileSync(`${ok.record}.argv`, 'utf8'), '-c\ncore.askPass=\ncredential\nfill\n');
  assert.equal(readFileSync(`${ok.record}.stdin`, 'utf8'), 'protocol=https\nhost=git.test\npath=r.git\n\n');
  const env = readFileSync(`${ok.record}.env`, 'utf8');
  assert.match(env, /^GIT_TERMINAL_PROMPT=0$/m);
  assert.doesNotMatch(env, /GIT_ASKPASS/);
  assert.deepEqual(await gitCredentialRunner({ git: ok.git })('store', { ...fields, username: 'u', password: 'p' }), { kind: 'done' });
  assert.equal(readFileSync(`${ok.record}.argv`, 'utf8'), '-c\ncore.askPass=\ncredential\napprove\n');

  assert.deepEqual(await gitCredentialRunner({ git: fakeGit('prompt').git })('get', fields), { kind: 'none' });
  assert.deepEqual(await gitCredentialRunner({ git: fakeGit('fail').git })('get', fields), { kind: 'error', reason: 'git exited with code 3' });
  assert.deepEqual(await gitCredentialRunner({ git: fakeGit('hang').git, timeoutMs: 300 })('get', fields), { kind: 'error', reason: 'git timed out' });
  assert.deepEqual(await gitCredentialRunner({ git: join(tempDir(), 'no-git') })('get', fields), { kind: 'error', reason: 'git not found' });
});

// ---- agent directory ------------------------------------------------------------------------------

const NET = 'clawker-net';
const agentLabels = (stack = 'clawker') => ({ [LABEL_MANAGED]: 'true', [LABEL_COMPONENT]: 'agent', [LABEL_STACK]: stack });
const container = (id: string, name: string, ip: string, labels: Record<string, string>, network = NET, state = 'running') => ({
  Id: id,
  Names: [`/${name}`],
  State: state,
  Labels: labels,
  NetworkSettings: { Networks: { [network]: { IPAddress: ip, GlobalIPv6Address: '' } } },
});

test('agent directory: only running, labelled agents of the stack, by their address on the firewall network', async () => {
  let listed: unknown[] = [];
  let calls = 0;
  let lastFilters: unknown;
  const docker = {
    listContainers: async (opts?: { filters?: unknown }) => {
      calls++;
      lastFilters = opts?.filters;
      return listed;
    },
  };
  let now = 0;
  const dir = new AgentDirectory(docker as never, { network: NET, stackPrefix: 'clawker', now: () => now });
  listed = [
    container('a', 'agent-a', '172.30.0.5', agentLabels()),
    container('b', 'other-stack', '172.30.0.6', agentLabels('test')),
    container('c', 'not-agent', '172.30.0.7', { ...agentLabels(), [LABEL_COMPONENT]: 'envoy' }),
    container('d', 'unmanaged', '172.30.0.8', { [LABEL_COMPONENT]: 'agent', [LABEL_STACK]: 'clawker' }),
    container('e', 'elsewhere', '172.30.0.9', agentLabels(), 'bridge'),
    container('f', 'stopped', '172.30.0.10', agentLabels(), NET, 'exited'),
    container('g', 'twin-1', '172.30.0.11', agentLabels()),
    container('h', 'twin-2', '172.30.0.11', agentLabels()),
  ];
  assert.deepEqual(await dir.lookup('::ffff:172.30.0.5'), { id: 'a', name: 'agent-a' } satisfies AgentIdentity);
  assert.deepEqual(lastFilters, { label: ['dev.clawker.managed=true', 'dev.clawker.component=agent', 'dev.clawker.stack=clawker'], status: ['running'] });
  for (const ip of ['172.30.0.6', '172.30.0.7', '172.30.0.8', '172.30.0.9', '172.30.0.10', '172.30.0.11', '']) {
    now += 1000; // past the least refresh interval: each miss lists again
    assert.equal(await dir.lookup(ip), undefined, ip);
  }
  // Cached: a hit within the TTL does not list; a miss soon after the last listing does not either.
  await dir.lookup('172.30.0.98'); // a miss: lists
  const before = calls;
  now += 100;
  await dir.lookup('172.30.0.5');
  await dir.lookup('172.30.0.99');
  assert.equal(calls, before);
  // A new agent is found on a miss once the least interval passed.
  listed = [...listed, container('n', 'new', '172.30.0.20', agentLabels())];
  now += 300;
  assert.deepEqual(await dir.lookup('172.30.0.20'), { id: 'n', name: 'new' });
  // A removed one is gone after the TTL.
  listed = [];
  now += 2500;
  assert.equal(await dir.lookup('172.30.0.5'), undefined);
  // Docker failing is an error, not a match.
  const broken = new AgentDirectory({ listContainers: async () => Promise.reject(new Error('down')) } as never, { network: NET, stackPrefix: 'clawker' });
  await assert.rejects(broken.lookup('172.30.0.5'), /down/);
  assert.equal(normalizeAddress('::FFFF:10.0.0.1'), '10.0.0.1');
  assert.equal(normalizeAddress('FD00::1'), 'fd00::1');
});

// ---- log ------------------------------------------------------------------------------------------

test('log lines: timestamped, one line each (control characters replaced), bounded', () => {
  assert.match(formatLine('hello', new Date(0)), /^1970-01-01T00:00:00\.000Z \[hostproxy\] hello\n$/);
  assert.equal(sanitize('a\nb\r\u001bc'), 'a?b??c');
  assert.ok(sanitize('x'.repeat(5000)).length <= 1001);
});

test('log file: past the cap it is copied to .1 and truncated; writing goes on appending', () => {
  const dir = tempDir();
  const logPath = join(dir, 'hostproxy.log');
  const fd = openSync(logPath, 'a', 0o600);
  try {
    const log = stdoutLog({ logPath, maxBytes: 4096, fd });
    for (let i = 0; i < 300; i++) log(`line ${i} ${'x'.repeat(100)}`);
    assert.ok(existsSync(`${logPath}.1`));
    assert.ok(statSync(logPath).size < 20 * 1024);
    const text = readFileSync(logPath, 'utf8');
    assert.match(text, /line 299 /);
    assert.doesNotMatch(text, /\0/);
    // Not our file on fd: never rotated.
    const other = join(dir, 'other.log');
    const otherFd = openSync(other, 'a');
    const log2 = stdoutLog({ logPath: join(dir, 'absent.log'), maxBytes: 10, fd: otherFd });
    for (let i = 0; i < 200; i++) log2('y'.repeat(100));
    closeSync(otherFd);
    assert.equal(existsSync(join(dir, 'absent.log.1')), false);
  } finally {
    closeSync(fd);
  }
});

// ---- the server in-process ------------------------------------------------------------------------

const PASSWORD = 'hunter2-S3CRET-pw';
const USERNAME = 'alice-the-user';

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

function call(port: number, method: string, path: string, options: { token?: string; body?: string; type?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers[HOST_PROXY_TOKEN_HEADER] = options.token;
    if (options.body !== undefined) headers['content-type'] = options.type ?? 'application/json';
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

test('server: authentication, endpoints, limits; the log never holds a password, username, token or full URL', async () => {
  const lines: string[] = [];
  let agent: AgentIdentity | undefined = { id: 'x', name: 'clawker-proj-dev' };
  let dockerDown = false;
  const gitCalls: [string, CredentialFields][] = [];
  const opened: string[] = [];
  const server = createHostProxyServer({
    secret: SECRET,
    agents: {
      lookup: async (address) => {
        assert.equal(address, '127.0.0.1');
        if (dockerDown) throw new Error('docker down');
        return agent;
      },
      lookupName: async () => assert.fail('these requests carry bare tokens'),
    },
    git: async (operation, fields) => {
      gitCalls.push([operation, fields]);
      if (operation !== 'get') return { kind: 'done' };
      return fields.host === 'git.test' ? { kind: 'found', username: USERNAME, password: PASSWORD } : { kind: 'none' };
    },
    openUrl: async (url) => {
      if (url.includes('fail')) throw new Error('no opener');
      opened.push(url);
    },
    log: (m) => lines.push(formatLine(m)),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const token = hostProxyToken(SECRET, 'clawker-proj-dev');
  try {
    const health = await call(port, 'GET', '/v1/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.service, 'clawker-hostproxy');
    assert.equal(health.body.pid, process.pid);

    const cred = (operation: string, fields: Record<string, string>, t: string | null = token) =>
      call(port, 'POST', '/v1/git/credential', { token: t ?? undefined, body: JSON.stringify({ operation, fields }) });

    const got = await cred('get', { protocol: 'https', host: 'git.test', path: 'r.git' });
    assert.deepEqual(got, { status: 200, body: { fields: { username: USERNAME, password: PASSWORD } } });
    assert.deepEqual(gitCalls.at(-1), ['get', { protocol: 'https', host: 'git.test', path: 'r.git' }]);
    assert.equal((await cred('get', { protocol: 'https', host: 'none.test' })).status, 404);
    assert.deepEqual(await cred('store', { protocol: 'https', host: 'git.test', username: USERNAME, password: PASSWORD }), { status: 200, body: {} });
    assert.equal((await cred('erase', { protocol: 'https', host: 'git.test', username: USERNAME })).status, 200);
    const calls = gitCalls.length;
    assert.equal((await cred('get', { protocol: 'http', host: 'git.test' })).status, 400);
    assert.equal((await cred('store', { protocol: 'https', host: 'git.test', username: USERNAME, password: `${PASSWORD}\nhost=x` })).status, 400);
    assert.equal(gitCalls.length, calls, 'refused requests never reach git');

    // Authentication.
    assert.deepEqual(await cred('get', { protocol: 'https', host: 'git.test' }, 'f'.repeat(64)), { status: 403, body: { error: 'wrong token' } });
    assert.deepEqual(await cred('get', { protocol: 'https', host: 'git.test' }, null), { status: 403, body: { error: 'missing token' } });
    assert.equal((await cred('get', { protocol: 'https', host: 'git.test' }, hostProxyToken(SECRET, 'clawker-proj-other'))).status, 403);
    agent = undefined;
    assert.deepEqual(await cred('get', { protocol: 'https', host: 'git.test' }), { status: 403, body: { error: 'not an agent container' } });
    agent = { id: 'y', name: 'clawker-proj-other' };
    assert.equal((await cred('get', { protocol: 'https', host: 'git.test' })).status, 403, 'a token is valid for its container only');
    dockerDown = true;
    assert.equal((await cred('get', { protocol: 'https', host: 'git.test' })).status, 503);
    dockerDown = false;
    agent = { id: 'x', name: 'clawker-proj-dev' };
    assert.equal(gitCalls.length, calls, 'unauthenticated requests never reach git');

    // Browser.
    const secretUrl = 'https://auth.example.test/device?code=QUERY-SECRET-123';
    assert.deepEqual(await call(port, 'POST', '/v1/browser/open', { token, body: JSON.stringify({ url: secretUrl }) }), { status: 200, body: {} });
    assert.deepEqual(opened, [secretUrl]);
    assert.equal((await call(port, 'POST', '/v1/browser/open', { token, body: JSON.stringify({ url: 'file:///etc/passwd' }) })).status, 400);
    assert.equal((await call(port, 'POST', '/v1/browser/open', { token, body: JSON.stringify({ url: 'https://fail.test/' }) })).status, 502);
    assert.equal(opened.length, 1);

    // Protocol limits.
    assert.equal((await call(port, 'POST', '/v1/git/credential', { token, body: '{', type: 'application/json' })).status, 400);
    assert.equal((await call(port, 'POST', '/v1/git/credential', { token, body: '{}', type: 'text/plain' })).status, 415);
    assert.equal((await call(port, 'POST', '/v1/git/credential', { token, body: JSON.stringify({ pad: 'x'.repeat(MAX_BODY_BYTES) }) })).status, 413);
    assert.equal((await call(port, 'GET', '/v1/git/credential', { token })).status, 405);
    assert.equal((await call(port, 'GET', '/v1/nothing', { token })).status, 404);
    assert.equal((await call(port, 'GET', '/v1/nothing')).status, 403, 'unknown paths need authentication too');
    for (let i = 0; i < 12; i++) await call(port, 'POST', '/v1/browser/open', { token, body: JSON.stringify({ url: `https://h.test/${i}` }) });
    assert.equal((await call(port, 'POST', '/v1/browser/open', { token, body: JSON.stringify({ url: 'https://h.test/x' }) })).status, 429);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  const log = lines.join('');
  for (const secret of [PASSWORD, USERNAME, token, 'QUERY-SECRET-123', '/device', SECRET.toString('hex')]) {
    assert.ok(!log.includes(secret), `the log holds ${secret}`);
  }
  assert.match(log, /git-credential agent=clawker-proj-dev operation=get protocol=https host=git\.test outcome=found/);
  assert.match(log, /git-credential agent=clawker-proj-dev operation=store protocol=https host=git\.test outcome=ok/);
  assert.match(log, /403 from 127\.0\.0\.1: wrong token/);
  assert.match(log, /403 from 127\.0\.0\.1: not an agent container/);
  assert.match(log, /browser-open agent=clawker-proj-dev host=auth\.example\.test outcome=opened/);
  for (const line of lines) assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z \[hostproxy\] [^\n]*\n$/);
});
