/**
 * The host proxy's defences, one by one (src/hostproxy): the HTTP server's limits (body size,
 * requests and git processes in flight, browser opens per agent per minute, header size, timeouts),
 * its answers (status, body, headers) and log lines (what was refused and why, never a secret), the
 * token cache's bound, the agent directory's cache and matching, the secret file's checks, the git
 * runner's environment and failures, the browser opener's choice and start, the log's rotation, and
 * the validators' edges. Docker, git and the browser are fakes; sockets and files are real.
 */
import assert from 'node:assert/strict';
import {
  chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { Agent, request, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HOST_PROXY_TOKEN_HEADER } from '../../src/core/agents/agentContract';
import { LABEL_COMPONENT, LABEL_MANAGED, LABEL_STACK } from '../../src/core/stack/labels';
import { AgentDirectory, type AgentIdentity, normalizeAddress } from '../../src/hostproxy/agents';
import { resolveOpener, urlOpener } from '../../src/hostproxy/browser';
import { type GitCredentialResult, gitCredentialRunner, gitEnvironment } from '../../src/hostproxy/gitCredential';
import { sanitize, stdoutLog } from '../../src/hostproxy/log';
import { readHostProxySecret } from '../../src/hostproxy/secret';
import { createHostProxyServer, type HostProxyDeps, MAX_BODY_BYTES } from '../../src/hostproxy/server';
import { agentToken, hostProxyToken, parseAgentToken } from '../../src/hostproxy/token';
import {
  type CredentialFields, formatCredential, MAX_URL_LENGTH, parseCredential, validateBrowserRequest, validateCredentialFields,
  validateCredentialRequest,
} from '../../src/hostproxy/validate';
import { fakeGit } from '../helpers/fakeGit';

const made: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-hostproxy-security-'));
  made.push(dir);
  return dir;
};
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const SECRET = Buffer.alloc(32, 5);
const PASSWORD = 'pw-S3CRET-never-logged';
const AGENT: AgentIdentity = { id: 'c1', name: 'clawker-proj-dev' };
const TOKEN = hostProxyToken(SECRET, AGENT.name);
const linuxOnly = process.platform !== 'linux' && 'uses /proc';

/** A promise and its resolver. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** `promise`, or a failure naming `what` after 5 s (so a test whose fake is never reached fails instead of hanging). */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not within 5 s: ${what}`)), 5000)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- the server -----------------------------------------------------------------------------------

interface Proxy {
  readonly server: Server;
  readonly port: number;
  /** The log's messages. */
  readonly lines: string[];
  close(): Promise<void>;
}

/** The server on 127.0.0.1 with fakes: AGENT for every source, git answering none, an opener that opens. */
async function startProxy(deps: Partial<HostProxyDeps> = {}): Promise<Proxy> {
  const lines: string[] = [];
  const server = createHostProxyServer({
    secret: SECRET,
    agents: { lookup: async () => AGENT, lookupName: async (name) => (name === AGENT.name ? AGENT : undefined) },
    git: async () => ({ kind: 'none' }),
    openUrl: async () => undefined,
    log: (m) => lines.push(m),
    ...deps,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    lines,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly body: unknown;
}

interface CallOptions {
  readonly token?: string;
  readonly body?: string;
  /** Content type of the body; null for none. */
  readonly type?: string | null;
  readonly headers?: Record<string, string>;
  readonly agent?: Agent;
}

/** One request; fails if no answer comes within 5 s. */
function call(port: number, method: string, path: string, options: CallOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token !== undefined) headers[HOST_PROXY_TOKEN_HEADER] = options.token;
    if (options.body !== undefined && options.type !== null) headers['content-type'] = options.type ?? 'application/json';
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: options.agent ?? false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
    });
    req.setTimeout(5000, () => req.destroy(new Error(`no answer within 5 s: ${method} ${path}`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Writes `text` on a raw connection and resolves with all that comes back until the server closes it (fails after 3 s). */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within 3 s; got ${JSON.stringify(got.slice(0, 200))}`));
    }, 3000);
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (got += c));
    socket.on('error', () => undefined); // a reset after the answer: what came is what counts
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

const credential = (operation: string, fields: Record<string, string>) => JSON.stringify({ operation, fields });
const getGitTest = credential('get', { protocol: 'https', host: 'git.test' });

/** Nothing secret in the log: no password, no token, no secret. */
function assertNoSecrets(lines: readonly string[], ...more: string[]): void {
  const log = lines.join('\n');
  for (const secret of [PASSWORD, TOKEN, SECRET.toString('hex'), ...more]) assert.ok(!log.includes(secret), `the log holds ${secret}`);
}

describe('host proxy server: answers', { timeout: 10_000 }, () => {
  test('every answer is JSON with its length, never cached, never sniffed', async () => {
    const p = await startProxy();
    try {
      for (const reply of [await call(p.port, 'GET', '/v1/health'), await call(p.port, 'GET', '/v1/nothing', { token: TOKEN })]) {
        assert.equal(reply.headers['content-type'], 'application/json; charset=utf-8');
        assert.equal(reply.headers['cache-control'], 'no-store');
        assert.equal(reply.headers['x-content-type-options'], 'nosniff');
        assert.equal(reply.headers['content-length'], String(Buffer.byteLength(reply.text)));
      }
    } finally {
      await p.close();
    }
  });

  test('routes: 404 and 405 say so, after authentication; POST /v1/health is no probe', async () => {
    const p = await startProxy();
    try {
      assert.deepEqual((await call(p.port, 'GET', '/v1/nothing', { token: TOKEN })).body, { error: 'no such endpoint' });
      assert.equal((await call(p.port, 'GET', '/v1/nothing', { token: TOKEN })).status, 404);
      const wrongMethod = await call(p.port, 'GET', '/v1/browser/open', { token: TOKEN });
      assert.deepEqual([wrongMethod.status, wrongMethod.body], [405, { error: 'method not allowed' }]);
      const postHealth = await call(p.port, 'POST', '/v1/health', { body: '{}' });
      assert.deepEqual([postHealth.status, postHealth.body], [403, { error: 'missing token' }]);
      assert.equal((await call(p.port, 'POST', '/v1/health', { token: TOKEN, body: '{}' })).status, 405);
    } finally {
      await p.close();
    }
  });

  test('GET /v1/health with a query is the probe too, and never opens a browser', async () => {
    const opened: string[] = [];
    const p = await startProxy({ openUrl: async (url) => void opened.push(url) });
    try {
      const probe = await call(p.port, 'GET', '/v1/health?probe=1');
      assert.deepEqual([probe.status, probe.body], [200, { service: 'clawker-hostproxy', pid: process.pid }]);
      // An agent's GET with a browser request as its body is still only the probe.
      const sneaky = await call(p.port, 'GET', '/v1/health?x', { token: TOKEN, body: JSON.stringify({ url: 'https://h.test/' }) });
      assert.equal(sneaky.status, 200);
      assert.deepEqual(opened, []);
    } finally {
      await p.close();
    }
  });

  test('authentication failures: logged with the source and why, answered with the reason', async () => {
    let docker = true;
    const p = await startProxy({
      agents: {
        lookup: async () => {
          if (!docker) throw new Error('docker down');
          return AGENT;
        },
        lookupName: async () => AGENT,
      },
    });
    try {
      const missing = await call(p.port, 'POST', '/v1/git/credential', { body: getGitTest });
      assert.deepEqual([missing.status, missing.body], [403, { error: 'missing token' }]);
      const wrong = await call(p.port, 'POST', '/v1/git/credential', { token: hostProxyToken(SECRET, 'other'), body: getGitTest });
      assert.deepEqual([wrong.status, wrong.body], [403, { error: 'wrong token' }]);
      docker = false;
      const down = await call(p.port, 'POST', '/v1/git/credential', { token: TOKEN, body: getGitTest });
      assert.deepEqual([down.status, down.body], [503, { error: 'agent lookup failed' }]);
      assert.deepEqual(p.lines, [
        '403 from 127.0.0.1: missing token',
        '403 from 127.0.0.1: wrong token',
        '503 from 127.0.0.1: cannot list agent containers in Docker',
      ]);
      assertNoSecrets(p.lines, hostProxyToken(SECRET, 'other'));
    } finally {
      await p.close();
    }
  });

  test('a token that names its container: the proof is checked before Docker is asked, the source address is no evidence', async () => {
    let docker = true;
    const asked: string[] = [];
    const p = await startProxy({
      agents: {
        lookup: async () => assert.fail('the source address is not looked up for a named token'),
        lookupName: async (name) => {
          asked.push(name);
          if (!docker) throw new Error('docker down');
          return name === AGENT.name ? AGENT : undefined;
        },
      },
    });
    try {
      const named = agentToken(SECRET, AGENT.name);
      assert.equal(named, `${AGENT.name}:${TOKEN}`);
      const ok = await call(p.port, 'POST', '/v1/git/credential', { token: named, body: getGitTest });
      assert.deepEqual([ok.status, ok.body], [404, { error: 'no credential' }], 'authenticated: git answered (the fake has none)');
      // Another container's name with this container's proof, and a forged proof: refused unasked.
      const borrowed = await call(p.port, 'POST', '/v1/git/credential', { token: `clawker-proj-other:${TOKEN}`, body: getGitTest });
      assert.deepEqual([borrowed.status, borrowed.body], [403, { error: 'wrong token' }]);
      const forged = await call(p.port, 'POST', '/v1/git/credential', { token: `${AGENT.name}:${'0'.repeat(64)}`, body: getGitTest });
      assert.deepEqual([forged.status, forged.body], [403, { error: 'wrong token' }]);
      assert.deepEqual(asked, [AGENT.name], 'Docker is asked only for the proven name');
      // A right proof for a container that is not a running agent of this stack.
      const gone = await call(p.port, 'POST', '/v1/git/credential', { token: agentToken(SECRET, 'clawker-proj-gone'), body: getGitTest });
      assert.deepEqual([gone.status, gone.body], [403, { error: 'not an agent container' }]);
      docker = false;
      const down = await call(p.port, 'POST', '/v1/git/credential', { token: named, body: getGitTest });
      assert.deepEqual([down.status, down.body], [503, { error: 'agent lookup failed' }]);
      assert.deepEqual(p.lines.filter((l) => !l.startsWith('git-credential')), [
        '403 from 127.0.0.1: wrong token',
        '403 from 127.0.0.1: wrong token',
        '403 from 127.0.0.1: clawker-proj-gone is not a running agent container',
        '503 from 127.0.0.1: cannot list agent containers in Docker',
      ]);
      assertNoSecrets(p.lines, TOKEN);
    } finally {
      await p.close();
    }
  });

  test('named tokens: only `<container name>:<64 hex digits>` is one', () => {
    assert.deepEqual(parseAgentToken(`a.b-c_d:${'f'.repeat(64)}`), { name: 'a.b-c_d', proof: 'f'.repeat(64) });
    for (const t of [undefined, 7, TOKEN, `:${TOKEN}`, `a:${TOKEN}x`, `a:${TOKEN.toUpperCase()}`, `a:${TOKEN.slice(1)}`, `.a:${TOKEN}`, `a b:${TOKEN}`, `a:b:${TOKEN}`, `x${'a'.repeat(255)}:${TOKEN}`, `\na:${TOKEN}`]) {
      assert.equal(parseAgentToken(t), undefined, String(t));
    }
    assert.deepEqual(parseAgentToken(`${'a'.repeat(255)}:${TOKEN}`)?.name.length, 255);
    assert.equal(agentToken(SECRET, '/slash'), `slash:${hostProxyToken(SECRET, 'slash')}`, "Docker's leading '/' is not part of the name");
  });
});

describe('host proxy server: bodies', { timeout: 10_000 }, () => {
  test('the content type must be JSON: none is refused; case and spaces around parameters do not matter', async () => {
    const opened: string[] = [];
    const p = await startProxy({ openUrl: async (url) => void opened.push(url) });
    const open = (type: string | null) => call(p.port, 'POST', '/v1/browser/open', { token: TOKEN, type, body: JSON.stringify({ url: 'https://h.test/' }) });
    try {
      const none = await open(null);
      assert.deepEqual([none.status, none.body], [415, { error: 'content type must be application/json' }]);
      assert.equal((await open('text/plain')).status, 415);
      assert.equal((await open('Application/JSON; charset=UTF-8')).status, 200);
      assert.equal((await open('application/json ; charset=utf-8')).status, 200);
      assert.equal(opened.length, 2);
    } finally {
      await p.close();
    }
  });

  test('a body of exactly MAX_BODY_BYTES is read; one byte more is 413; JSON that is not is 400', async () => {
    const opened: string[] = [];
    const p = await startProxy({ openUrl: async (url) => void opened.push(url) });
    try {
      const json = JSON.stringify({ url: 'https://h.test/max' });
      const exact = json + ' '.repeat(MAX_BODY_BYTES - json.length); // JSON allows trailing white space
      assert.equal(Buffer.byteLength(exact), MAX_BODY_BYTES);
      assert.equal((await call(p.port, 'POST', '/v1/browser/open', { token: TOKEN, body: exact })).status, 200);
      assert.deepEqual(opened, ['https://h.test/max']);
      const over = await call(p.port, 'POST', '/v1/browser/open', { token: TOKEN, body: `${exact} ` });
      assert.deepEqual([over.status, over.body], [413, { error: 'body too large' }]);
      const garbled = await call(p.port, 'POST', '/v1/browser/open', { token: TOKEN, body: '{"url":' });
      assert.deepEqual([garbled.status, garbled.body], [400, { error: 'body is not valid JSON' }]);
      assert.deepEqual(opened, ['https://h.test/max']);
    } finally {
      await p.close();
    }
  });

  test('a declared length over the limit is refused before the body comes, and the connection closed', async () => {
    const p = await startProxy();
    try {
      const head = `POST /v1/browser/open HTTP/1.1\r\nHost: x\r\n${HOST_PROXY_TOKEN_HEADER}: ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${MAX_BODY_BYTES + 1}\r\n\r\n`;
      const answer = await raw(p.port, head); // no body at all: the answer must not wait for it
      assert.match(answer, /^HTTP\/1\.1 413 /);
      assert.match(answer, /\r\nconnection: close\r\n/i);
      assert.match(answer, /\{"error":"body too large"\}$/);
    } finally {
      await p.close();
    }
  });

  test('a chunked body is counted as it comes: past the limit it is 413, below it is read', async () => {
    const opened: string[] = [];
    const p = await startProxy({ openUrl: async (url) => void opened.push(url) });
    const chunked = (parts: string[]) =>
      `POST /v1/browser/open HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${HOST_PROXY_TOKEN_HEADER}: ${TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
      parts.map((part) => `${Buffer.byteLength(part).toString(16)}\r\n${part}\r\n`).join('') +
      '0\r\n\r\n';
    try {
      const json = JSON.stringify({ url: 'https://h.test/chunked' });
      const fine = await raw(p.port, chunked([json.slice(0, 10), json.slice(10)]));
      assert.match(fine, /^HTTP\/1\.1 200 /);
      assert.deepEqual(opened, ['https://h.test/chunked']);
      const pad = ' '.repeat(MAX_BODY_BYTES / 2);
      const tooMuch = await raw(p.port, chunked([json, pad, pad]));
      assert.match(tooMuch, /^HTTP\/1\.1 413 /);
      assert.match(tooMuch, /\{"error":"body too large"\}$/);
      assert.equal(opened.length, 1);
    } finally {
      await p.close();
    }
  });

  test('an error answer keeps a connection whose request was read whole', async () => {
    const p = await startProxy();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const reply = await call(p.port, 'GET', '/v1/git/credential', { agent }); // no body: read whole with its head
      assert.equal(reply.status, 403);
      assert.equal(reply.headers.connection, 'keep-alive');
    } finally {
      agent.destroy();
      await p.close();
    }
  });

  test('headers over 8 KiB are refused by the parser (431)', async () => {
    const p = await startProxy();
    try {
      const reply = await call(p.port, 'GET', '/v1/nothing', { token: TOKEN, headers: { 'x-pad': 'p'.repeat(9 * 1024) } });
      assert.equal(reply.status, 431);
    } finally {
      await p.close();
    }
  });
});

describe('host proxy server: git credentials', { timeout: 10_000 }, () => {
  test('refused, none, error and a failing runner: status, body and log; no secret logged', async () => {
    const results: (GitCredentialResult | Error | string)[] = [
      { kind: 'none' },
      { kind: 'error', reason: 'git timed out' },
      new TypeError('boom'),
      'not an error',
    ];
    const p = await startProxy({
      git: async () => {
        const next = results.shift()!;
        if (typeof next === 'string' || next instanceof Error) throw next;
        return next;
      },
    });
    const post = (body: string) => call(p.port, 'POST', '/v1/git/credential', { token: TOKEN, body });
    try {
      const refused = await post(credential('get', { protocol: 'http', host: 'git.test', password: PASSWORD }));
      assert.deepEqual([refused.status, refused.body], [400, { error: 'only protocol https is forwarded' }]);
      const none = await post(getGitTest);
      assert.deepEqual([none.status, none.body], [404, { error: 'no credential' }]);
      const error = await post(getGitTest);
      assert.deepEqual([error.status, error.body], [502, { error: 'git timed out' }]);
      const thrown = await post(getGitTest);
      assert.deepEqual([thrown.status, thrown.body], [500, { error: 'internal error' }]);
      assert.equal((await post(getGitTest)).status, 500);
      const what = 'git-credential agent=clawker-proj-dev operation=get protocol=https host=git.test';
      assert.deepEqual(p.lines, [
        'git-credential agent=clawker-proj-dev refused: only protocol https is forwarded',
        `${what} outcome=none`,
        `${what} outcome=error (git timed out)`,
        '500: internal error (TypeError)',
        '500: internal error (unknown)',
      ]);
      assertNoSecrets(p.lines, 'boom');
    } finally {
      await p.close();
    }
  });

  test('at most 4 git processes at once: the 5th is 429; finished or failed ones free their place', async () => {
    const gate = deferred();
    const started: string[] = [];
    const fourStarted = deferred();
    let failNext = false;
    const p = await startProxy({
      git: async (_operation, fields) => {
        started.push(fields.host);
        if (failNext) throw new Error('runner broke');
        if (started.length <= 4) {
          if (started.length === 4) fourStarted.resolve();
          await gate.promise;
        }
        return { kind: 'found', username: 'u', password: PASSWORD };
      },
    });
    const get = (host: string) => call(p.port, 'POST', '/v1/git/credential', { token: TOKEN, body: credential('get', { protocol: 'https', host }) });
    try {
      const first = ['a.test', 'b.test', 'c.test', 'd.test'].map(get);
      await within(fourStarted.promise, 'four git runs started');
      const fifth = await get('e.test');
      assert.deepEqual([fifth.status, fifth.body], [429, { error: 'too many credential requests at once' }]);
      assert.deepEqual(started, ['a.test', 'b.test', 'c.test', 'd.test'], 'the 5th never reached git');
      assert.ok(p.lines.includes('git-credential agent=clawker-proj-dev operation=get protocol=https host=e.test outcome=busy'));
      gate.resolve();
      for (const reply of await Promise.all(first)) assert.equal(reply.status, 200);
      // Four failing runs free their places too.
      failNext = true;
      for (const reply of await Promise.all(['f.test', 'g.test', 'h.test', 'i.test'].map(get))) assert.equal(reply.status, 500);
      failNext = false;
      const again = await Promise.all(['j.test', 'k.test', 'l.test', 'm.test'].map(get));
      assert.deepEqual(again.map((r) => r.status), [200, 200, 200, 200]);
      assertNoSecrets(p.lines);
    } finally {
      gate.resolve();
      await p.close();
    }
  });
});

describe('host proxy server: browser', { timeout: 10_000 }, () => {
  test('refused and failed opens: status, body and a log line with the host only', async () => {
    const failures: unknown[] = [new Error('no opener here'), 'not an error'];
    const p = await startProxy({
      openUrl: async () => {
        throw failures.shift();
      },
    });
    const open = (url: string) => call(p.port, 'POST', '/v1/browser/open', { token: TOKEN, body: JSON.stringify({ url }) });
    try {
      const refused = await open('file:///etc/passwd');
      assert.deepEqual([refused.status, refused.body], [400, { error: 'only http and https URLs are opened' }]);
      const failed = await open('https://auth.test/device?code=Q-SECRET');
      assert.deepEqual([failed.status, failed.body], [502, { error: 'cannot open the browser' }]);
      assert.equal((await open('https://auth.test/other')).status, 502);
      assert.deepEqual(p.lines, [
        'browser-open agent=clawker-proj-dev refused: only http and https URLs are opened',
        'browser-open agent=clawker-proj-dev host=auth.test outcome=error (no opener here)',
        'browser-open agent=clawker-proj-dev host=auth.test outcome=error (cannot open)',
      ]);
      assertNoSecrets(p.lines, 'Q-SECRET', '/device', '/etc/passwd');
    } finally {
      await p.close();
    }
  });

  test('10 opens per agent per minute: the 11th within the minute is 429, the minute is exact, other agents are not held up', async () => {
    let now = 1_000_000;
    let agent = AGENT;
    const opened: string[] = [];
    const p = await startProxy({ now: () => now, agents: { lookup: async () => agent, lookupName: async () => undefined }, openUrl: async (url) => void opened.push(url) });
    const open = (i: number | string) =>
      call(p.port, 'POST', '/v1/browser/open', { token: hostProxyToken(SECRET, agent.name), body: JSON.stringify({ url: `https://h.test/${i}` }) });
    try {
      for (let i = 0; i < 10; i++) assert.equal((await open(i)).status, 200, `open ${i}`);
      now += 59_999;
      const limited = await open('late');
      assert.deepEqual([limited.status, limited.body], [429, { error: 'too many browser opens' }]);
      assert.equal(p.lines.at(-1), 'browser-open agent=clawker-proj-dev host=h.test outcome=rate-limited');
      agent = { id: 'c2', name: 'clawker-proj-other' };
      assert.equal((await open('other')).status, 200);
      agent = AGENT;
      now += 1; // a minute after the first ten
      assert.equal((await open('next-minute')).status, 200);
      assert.equal(opened.length, 12);
    } finally {
      await p.close();
    }
  });
});

describe('host proxy server: capacity', { timeout: 10_000 }, () => {
  test('32 requests in flight: the 33rd is 503 busy, the probe still answers; finished ones free their place', async () => {
    const gate = deferred();
    const all = deferred();
    let lookups = 0;
    const p = await startProxy({
      agents: {
        lookup: async () => {
          lookups++;
          if (lookups <= 32) {
            if (lookups === 32) all.resolve();
            await gate.promise;
          }
          return undefined;
        },
        lookupName: async () => undefined,
      },
    });
    try {
      const held = Array.from({ length: 32 }, () => call(p.port, 'GET', '/v1/nothing'));
      await within(all.promise, '32 lookups started');
      const busy = await call(p.port, 'GET', '/v1/nothing');
      assert.deepEqual([busy.status, busy.body], [503, { error: 'busy' }]);
      assert.equal(lookups, 32, 'the 33rd was not looked up');
      assert.equal((await call(p.port, 'GET', '/v1/health')).status, 200);
      gate.resolve();
      for (const reply of await Promise.all(held)) assert.equal(reply.status, 403);
      const after = await Promise.all(Array.from({ length: 32 }, () => call(p.port, 'GET', '/v1/nothing')));
      assert.deepEqual(new Set(after.map((r) => r.status)), new Set([403]));
    } finally {
      gate.resolve();
      await p.close();
    }
  });

  test('timeouts and connection limits; an idle socket is destroyed', async () => {
    const p = await startProxy();
    try {
      assert.equal(p.server.requestTimeout, 15_000);
      assert.equal(p.server.headersTimeout, 10_000);
      assert.equal(p.server.keepAliveTimeout, 5_000);
      assert.equal(p.server.timeout, 45_000);
      assert.equal(p.server.maxConnections, 128);
      assert.equal(p.server.maxRequestsPerSocket, 100);
      let destroyed = 0;
      p.server.emit('timeout', { destroy: () => destroyed++ });
      assert.equal(destroyed, 1);
    } finally {
      await p.close();
    }
  });

  test('tokens are computed once per container, and the cache is emptied past 1000 containers', async () => {
    // Counts derivations: hostProxyToken reads the secret's length once each time (the HMAC reads its bytes).
    const secret = Buffer.from(SECRET);
    let derived = 0;
    Object.defineProperty(secret, 'length', { get: () => (derived++, SECRET.length) });
    let name = 'agent-0';
    const p = await startProxy({ secret, agents: { lookup: async () => ({ id: name, name }), lookupName: async () => undefined } });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ask = async (n: number): Promise<number> => {
      name = `agent-${n}`;
      const before = derived;
      assert.equal((await call(p.port, 'GET', '/v1/nothing', { agent })).status, 403);
      return derived - before;
    };
    try {
      assert.equal(await ask(1), 1);
      assert.equal(await ask(1), 0, 'cached');
      assert.equal(await ask(2), 1);
      assert.equal(await ask(1), 0, 'a second container does not push the first out');
      for (let n = 3; n <= 1001; n++) await ask(n);
      assert.equal(await ask(1), 0, '1001 containers are all kept');
      assert.equal(await ask(1002), 1);
      assert.equal(await ask(1), 1, 'the 1002nd emptied the cache');
      assert.equal(await ask(1002), 0);
    } finally {
      agent.destroy();
      await p.close();
    }
  });
});

// ---- the agent directory --------------------------------------------------------------------------

describe('agent directory', () => {
  const NET = 'clawker-net';
  const labels = { [LABEL_MANAGED]: 'true', [LABEL_COMPONENT]: 'agent', [LABEL_STACK]: 'clawker' };
  const container = (id: string, names: string[] | undefined, ip: string) => ({
    Id: id,
    Names: names,
    State: 'running',
    Labels: labels,
    NetworkSettings: { Networks: { [NET]: { IPAddress: ip } } },
  });

  test('addresses: IPv4-mapped IPv6 is the IPv4 address only when the whole is one', () => {
    assert.equal(normalizeAddress(undefined), '');
    assert.equal(normalizeAddress(''), '');
    assert.equal(normalizeAddress('::ffff:10.0.10.1'), '10.0.10.1');
    assert.equal(normalizeAddress('::ffff:10.0.0.10'), '10.0.0.10');
    assert.equal(normalizeAddress('::FFFF:172.30.0.5'), '172.30.0.5');
    assert.equal(normalizeAddress('fd00::ffff:10.0.0.1'), 'fd00::ffff:10.0.0.1');
    assert.equal(normalizeAddress('::ffff:10.0.0.1x'), '::ffff:10.0.0.1x');
    assert.equal(normalizeAddress('::ffff:300.0.0.1'), '::ffff:300.0.0.1');
  });

  test('an empty source address is nobody, without asking Docker', async () => {
    let calls = 0;
    const dir = new AgentDirectory({ listContainers: async () => (calls++, [container('a', ['/a'], '172.30.0.5')]) } as never, { network: NET, stackPrefix: 'clawker' });
    assert.equal(await dir.lookup(''), undefined);
    assert.equal(calls, 0);
  });

  test('a listing answers for 2 s; a miss lists again once 250 ms have passed', async () => {
    let now = 0;
    let calls = 0;
    const dir = new AgentDirectory({ listContainers: async () => (calls++, [container('a', ['/a'], '172.30.0.5')]) } as never, {
      network: NET,
      stackPrefix: 'clawker',
      now: () => now,
    });
    assert.deepEqual(await dir.lookup('172.30.0.5'), { id: 'a', name: 'a' });
    assert.equal(calls, 1);
    now = 2_000;
    await dir.lookup('172.30.0.5');
    assert.equal(calls, 1, 'still fresh at 2 s');
    now = 2_001;
    await dir.lookup('172.30.0.5');
    assert.equal(calls, 2, 'stale after 2 s');
    now = 2_001 + 249;
    await dir.lookup('172.30.0.99');
    assert.equal(calls, 2, 'a miss within 250 ms of the listing does not list');
    now = 2_001 + 250;
    await dir.lookup('172.30.0.99');
    assert.equal(calls, 3, 'a miss 250 ms after the listing lists');
  });

  test('by name (named tokens): a running agent of this stack, whatever its address; cached and refreshed like addresses', async () => {
    let now = 0;
    let calls = 0;
    let listing = [container('a', ['/clawker.web.dev'], ''), container('b', ['/clawker.api.dev'], '172.30.0.7')];
    const dir = new AgentDirectory({ listContainers: async () => (calls++, listing) } as never, { network: NET, stackPrefix: 'clawker', now: () => now });
    assert.deepEqual(await dir.lookupName('clawker.web.dev'), { id: 'a', name: 'clawker.web.dev' }, 'no address on the network (a NATed engine sees none that matters)');
    assert.deepEqual(await dir.lookupName('clawker.api.dev'), { id: 'b', name: 'clawker.api.dev' });
    assert.equal(calls, 1);
    now = 249;
    assert.equal(await dir.lookupName('clawker.new.dev'), undefined);
    assert.equal(calls, 1, 'a miss within 250 ms does not list');
    listing = [...listing, container('c', ['/clawker.new.dev'], '')];
    now = 250;
    assert.deepEqual(await dir.lookupName('clawker.new.dev'), { id: 'c', name: 'clawker.new.dev' }, 'a miss 250 ms after lists again');
    assert.equal(calls, 2);
    listing = [];
    now = 2_250;
    assert.deepEqual(await dir.lookupName('clawker.web.dev'), { id: 'a', name: 'clawker.web.dev' }, 'fresh for 2 s');
    now = 2_251;
    assert.equal(await dir.lookupName('clawker.web.dev'), undefined, 'gone once the listing is stale');
    const other = new AgentDirectory(
      { listContainers: async () => [{ ...container('x', ['/x'], ''), Labels: { ...labels, [LABEL_STACK]: 'other' } }, { ...container('y', ['/y'], ''), State: 'exited' }] } as never,
      { network: NET, stackPrefix: 'clawker' },
    );
    assert.equal(await other.lookupName('x'), undefined, "another stack's agent");
    assert.equal(await other.lookupName('y'), undefined, 'a stopped container');
  });

  test("names: Docker's leading '/' only is dropped; a container without a usable name is skipped", async () => {
    const dir = new AgentDirectory(
      {
        listContainers: async () => [
          container('none', undefined, '172.30.0.2'),
          container('empty', [], '172.30.0.3'),
          container('slash', ['/'], '172.30.0.4'),
          container('inner', ['odd/name'], '172.30.0.5'),
          container('ok', ['/fine'], '172.30.0.6'),
        ],
      } as never,
      { network: NET, stackPrefix: 'clawker' },
    );
    assert.deepEqual(await dir.lookup('172.30.0.6'), { id: 'ok', name: 'fine' });
    assert.deepEqual(await dir.lookup('172.30.0.5'), { id: 'inner', name: 'odd/name' });
    for (const ip of ['172.30.0.2', '172.30.0.3', '172.30.0.4']) assert.equal(await dir.lookup(ip), undefined, ip);
  });
});

// ---- the secret -----------------------------------------------------------------------------------

describe('host proxy secret file', () => {
  /** A data directory whose hostproxy/secret is made by `make(path)`. */
  function withSecret(make: (path: string) => void): { dataDir: string; path: string } {
    const dataDir = tempDir();
    mkdirSync(join(dataDir, 'hostproxy'), { mode: 0o700 });
    const path = join(dataDir, 'hostproxy', 'secret');
    make(path);
    return { dataDir, path };
  }
  const openFds = (): number => readdirSync('/proc/self/fd').length;

  test('a private 32-byte file is read, and its descriptor closed', { skip: linuxOnly }, () => {
    const { dataDir } = withSecret((path) => writeFileSync(path, SECRET, { mode: 0o600 }));
    const before = openFds();
    assert.deepEqual(readHostProxySecret(dataDir), SECRET);
    assert.equal(openFds(), before);
  });

  test('the wrong size is refused, and the descriptor still closed', { skip: linuxOnly }, () => {
    const { dataDir, path } = withSecret((p) => writeFileSync(p, SECRET.subarray(0, 31), { mode: 0o600 }));
    const before = openFds();
    assert.throws(() => readHostProxySecret(dataDir), { message: `${path} has 31 bytes, expected 32` });
    assert.equal(openFds(), before);
  });

  test('a symlink is not followed, even to a good secret', () => {
    const good = join(tempDir(), 'good');
    writeFileSync(good, SECRET, { mode: 0o600 });
    const { dataDir } = withSecret((path) => symlinkSync(good, path));
    assert.throws(() => readHostProxySecret(dataDir), { code: 'ELOOP' });
  });

  test('a directory is not a regular file', () => {
    const { dataDir, path } = withSecret((p) => mkdirSync(p, { mode: 0o700 }));
    assert.throws(() => readHostProxySecret(dataDir), { message: `${path} is not a regular file` });
  });

  test("another user's file is refused", () => {
    assert.equal(process.getuid?.(), 0, 'this test makes a file owned by another user, which needs root (the unit suite runs as root in CI)');
    const { dataDir, path } = withSecret((p) => {
      writeFileSync(p, SECRET, { mode: 0o600 });
      chownSync(p, 4242, 4242);
    });
    assert.throws(() => readHostProxySecret(dataDir), { message: `${path} belongs to another user` });
  });

  test('tokens need a secret of at least 16 bytes', () => {
    assert.match(hostProxyToken(Buffer.alloc(16, 1), 'a'), /^[0-9a-f]{64}$/);
    assert.throws(() => hostProxyToken(Buffer.alloc(15, 1), 'a'), { message: 'host proxy secret too short' });
  });
});

// ---- git ------------------------------------------------------------------------------------------

describe('git credential runner', { skip: process.platform === 'win32' }, () => {
  const fields: CredentialFields = { protocol: 'https', host: 'git.test' };

  test('the environment: without a repository to point at, without unset variables', () => {
    const env = gitEnvironment({ PATH: '/usr/bin', GIT_DIR: '/work/.git', GIT_WORK_TREE: '/work', UNSET: undefined });
    assert.deepStrictEqual(env, { PATH: '/usr/bin', GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never' });
  });

  test('git is found on the PATH of the environment given', async () => {
    const dir = tempDir();
    fakeGit(dir, 'answer');
    assert.deepEqual(await gitCredentialRunner({ env: { PATH: dir } })('get', fields), { kind: 'found', username: 'alice', password: 'pa=ss word' });
  });

  test('fields git cannot carry are refused without running git', async () => {
    const dir = tempDir();
    const { git, record } = fakeGit(dir, 'answer');
    assert.deepEqual(await gitCredentialRunner({ git })('get', { ...fields, path: 'a\nhost=evil' }), { kind: 'error', reason: 'invalid credential' });
    assert.equal(existsSync(`${record}.argv`), false);
  });

  test('a prompt refused is no credential for get only; a git killed by a signal is an error', async () => {
    assert.deepEqual(await gitCredentialRunner({ git: fakeGit(tempDir(), 'prompt').git })('store', { ...fields, username: 'u', password: 'p' }), {
      kind: 'error',
      reason: 'git exited with code 128',
    });
    assert.deepEqual(await gitCredentialRunner({ git: fakeGit(tempDir(), 'killed').git })('get', fields), { kind: 'error', reason: 'git exited with an error' });
  });

  test('a git that exits without reading its input is an error, not a crash of the daemon', async () => {
    // More than a pipe holds, so writing it must fail once git is gone (EPIPE).
    const big = { ...fields, path: 'p'.repeat(1024 * 1024) };
    assert.deepEqual(await gitCredentialRunner({ git: fakeGit(tempDir(), 'deaf').git })('erase', big), { kind: 'error', reason: 'git exited with code 3' });
  });
});

// ---- the browser opener ---------------------------------------------------------------------------

describe('browser opener', () => {
  const url = 'https://h.test/x';

  test('CLAWKER_HOSTPROXY_OPENER is the program, given the URL only', () => {
    assert.deepEqual(resolveOpener(url, { CLAWKER_HOSTPROXY_OPENER: '/opt/rec', BROWSER: 'firefox' }, 'linux'), { command: '/opt/rec', args: [url] });
  });

  test('$BROWSER: blank entries skipped, white space trimmed and collapsed, the URL appended unless %s places it', () => {
    assert.deepEqual(resolveOpener(url, { BROWSER: '  :firefox' }, 'linux'), { command: 'firefox', args: [url] });
    assert.deepEqual(resolveOpener(url, { BROWSER: '  firefox --new-tab' }, 'linux'), { command: 'firefox', args: ['--new-tab', url] });
    assert.deepEqual(resolveOpener(url, { BROWSER: 'chromium   --new-window' }, 'linux'), { command: 'chromium', args: ['--new-window', url] });
    assert.deepEqual(resolveOpener(url, { BROWSER: 'b --url=%s --x' }, 'linux'), { command: 'b', args: [`--url=${url}`, '--x'] });
  });

  test('xdg-open on Linux and the BSDs; none on other systems', () => {
    for (const platform of ['linux', 'freebsd', 'openbsd', 'netbsd'] as NodeJS.Platform[]) {
      assert.deepEqual(resolveOpener(url, {}, platform), { command: 'xdg-open', args: [url] }, platform);
    }
    assert.equal(resolveOpener(url, {}, 'aix'), undefined);
  });

  test('the opener starts detached, in its own session, with the environment given and the URL as its argument', { skip: linuxOnly, timeout: 10_000 }, async () => {
    const dir = tempDir();
    const program = join(dir, 'opener');
    const record = join(dir, 'record');
    writeFileSync(
      program,
      `#!/bin/sh\n{ printf '%s\\n' "$#" "$@"; echo "mark=$OPENER_MARK"; echo "pid=$$"; read -r _ _ _ _ _ session _ < /proc/$$/stat; echo "session=$session"; } > '${record}.tmp'\nmv '${record}.tmp' '${record}'\n`,
      { mode: 0o755 },
    );
    await urlOpener({ CLAWKER_HOSTPROXY_OPENER: program, OPENER_MARK: 'given', PATH: process.env.PATH })(url);
    for (let i = 0; i < 500 && !existsSync(record); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    const lines = readFileSync(record, 'utf8').trim().split('\n');
    assert.deepEqual(lines.slice(0, 3), ['1', url, 'mark=given']);
    const pid = lines[3]!.replace('pid=', '');
    assert.equal(lines[4], `session=${pid}`, 'a session of its own: detached');
  });

  test('an opener that cannot start, or none at all, is an error that says why', { timeout: 10_000 }, async () => {
    await assert.rejects(urlOpener({ CLAWKER_HOSTPROXY_OPENER: join(tempDir(), 'absent') })(url), { message: 'cannot start the browser opener (ENOENT)' });
    await assert.rejects(urlOpener({}, 'win32')(url), { message: 'no browser opener on this platform' });
  });
});

// ---- the log --------------------------------------------------------------------------------------

describe('host proxy log', () => {
  // A line is `<24-character time> [hostproxy] <message>\n`: 38 characters around the message.
  const message = 'm'.repeat(1024 - 38);

  test('sanitize: bounded to max characters, an ellipsis only past it', () => {
    assert.equal(sanitize('abc', 3), 'abc');
    assert.equal(sanitize('abcd', 3), 'abc…');
  });

  test('the size is checked once more than 16 KiB were written since the last check', () => {
    const path = join(tempDir(), 'hostproxy.log');
    const fd = openSync(path, 'a', 0o600);
    try {
      const log = stdoutLog({ logPath: path, maxBytes: 100, fd });
      for (let i = 0; i < 16; i++) log(message); // exactly 16 KiB: no check yet
      assert.equal(readFileSync(path, 'utf8').length, 16 * 1024);
      assert.equal(existsSync(`${path}.1`), false);
      log(message);
      assert.equal(readFileSync(`${path}.1`, 'utf8').length, 17 * 1024);
      assert.equal(readFileSync(path, 'utf8'), '');
    } finally {
      closeSync(fd);
    }
  });

  test('rotated past the cap, not at it', () => {
    for (const [maxBytes, rotated] of [
      [17 * 1024, false],
      [17 * 1024 - 1, true],
    ] as const) {
      const path = join(tempDir(), 'hostproxy.log');
      const fd = openSync(path, 'a', 0o600);
      try {
        const log = stdoutLog({ logPath: path, maxBytes, fd });
        for (let i = 0; i < 17; i++) log(message);
        assert.equal(existsSync(`${path}.1`), rotated, String(maxBytes));
      } finally {
        closeSync(fd);
      }
    }
  });

  test('another file at the log path (same file system) is never rotated', () => {
    const dir = tempDir();
    const path = join(dir, 'hostproxy.log');
    writeFileSync(path, 'the real log\n');
    const fd = openSync(join(dir, 'stdout.txt'), 'a', 0o600);
    try {
      const log = stdoutLog({ logPath: path, maxBytes: 100, fd });
      for (let i = 0; i < 20; i++) log(message);
      assert.equal(existsSync(`${path}.1`), false);
      assert.equal(readFileSync(path, 'utf8'), 'the real log\n');
    } finally {
      closeSync(fd);
    }
  });

  test('a log that cannot be written is left as it is', () => {
    const path = join(tempDir(), 'hostproxy.log');
    const content = 'x'.repeat(4096);
    writeFileSync(path, content, { mode: 0o600 });
    const fd = openSync(path, 'r'); // writes fail
    try {
      const log = stdoutLog({ logPath: path, maxBytes: 100, fd });
      for (let i = 0; i < 20; i++) log(message);
      assert.equal(existsSync(`${path}.1`), false);
      assert.equal(readFileSync(path, 'utf8'), content);
    } finally {
      closeSync(fd);
    }
  });
});

// ---- validation edges -----------------------------------------------------------------------------

describe('host proxy validation edges', () => {
  const reason = (r: { ok: boolean; reason?: string }) => (r.ok ? 'ok' : r.reason);

  test('only plain objects are bodies: not an array with an object prototype, not a class instance', () => {
    const arrayLike = Object.assign(Object.setPrototypeOf([], Object.prototype) as object, { url: 'https://h.test/' });
    assert.equal(reason(validateBrowserRequest(arrayLike)), 'body must be a JSON object');
    class Body {
      url = 'https://h.test/';
    }
    assert.equal(reason(validateBrowserRequest(new Body())), 'body must be a JSON object');
    assert.equal(reason(validateCredentialFields(Object.assign(Object.create(null) as object, { protocol: 'https', host: 'h' }))), 'fields must be an object');
  });

  test('lengths: up to the maximum is fine, one more is too long', () => {
    const fields = (extra: Record<string, string>) => validateCredentialFields({ protocol: 'https', host: 'h', ...extra });
    assert.equal(reason(fields({ password: 'p'.repeat(16384) })), 'ok');
    assert.equal(reason(fields({ password: 'p'.repeat(16385) })), 'password is too long');
    assert.equal(reason(validateCredentialFields({ protocol: 'https', host: 'a'.repeat(260) })), 'ok');
    assert.equal(reason(validateCredentialFields({ protocol: 'https', host: 'a'.repeat(261) })), 'host is too long');
  });

  test('unknown keys are named by their first 32 characters', () => {
    const long = 'k'.repeat(100);
    assert.equal(reason(validateCredentialFields({ protocol: 'https', host: 'h', [long]: 'v' })), `unknown field "${'k'.repeat(32)}"`);
    assert.equal(reason(validateCredentialRequest({ operation: 'get', fields: { protocol: 'https', host: 'h' }, [long]: 1 })), `unknown key "${'k'.repeat(32)}"`);
    assert.equal(reason(validateBrowserRequest({ url: 'https://h.test/', [long]: 1 })), `unknown key "${'k'.repeat(32)}"`);
  });

  test('ports 1 to 65535; an IPv6 literal is not a port', () => {
    const host = (h: string) => reason(validateCredentialFields({ protocol: 'https', host: h }));
    assert.equal(host('h:0'), 'host has an invalid port');
    assert.equal(host('h:1'), 'ok');
    assert.equal(host('h:65535'), 'ok');
    assert.equal(host('h:65536'), 'host has an invalid port');
    assert.equal(host('[::0]'), 'ok');
    assert.equal(host('[fd00::0]:443'), 'ok');
  });

  test('fields not given are absent, not undefined', () => {
    const v = validateCredentialFields({ protocol: 'https', host: 'h' });
    assert.ok(v.ok);
    assert.deepStrictEqual(Object.keys(v.value), ['protocol', 'host']);
  });

  test('store needs a username as well as a password', () => {
    const store = (fields: Record<string, string>) => reason(validateCredentialRequest({ operation: 'store', fields: { protocol: 'https', host: 'h', ...fields } }));
    assert.equal(store({ password: 'p' }), 'store needs username and password');
    assert.equal(store({ username: 'u', password: 'p' }), 'ok');
  });

  test('URL length: the text as sent and the URL as it will be opened are both capped', () => {
    const open = (url: string) => reason(validateBrowserRequest({ url }));
    const exact = `https://h/${'a'.repeat(MAX_URL_LENGTH - 10)}`;
    assert.equal(exact.length, MAX_URL_LENGTH);
    assert.equal(open(exact), 'ok');
    // Longer as sent, short once its dot segments are resolved.
    const dots = `https://h/${'a/../'.repeat(Math.ceil((MAX_URL_LENGTH - 9) / 5))}`;
    assert.ok(dots.length > MAX_URL_LENGTH && new URL(dots).href.length < 20);
    assert.equal(open(dots), 'url is too long');
    // Short as sent, longer once percent-encoded.
    const wide = `https://h/${'é'.repeat(2000)}`;
    assert.ok(wide.length < MAX_URL_LENGTH && new URL(wide).href.length > MAX_URL_LENGTH);
    assert.equal(open(wide), 'url is too long');
  });

  test("git's format: a value it cannot carry is refused by key, never by value", () => {
    assert.throws(() => formatCredential({ protocol: 'https', host: 'h', password: `${PASSWORD}\nhost=evil` }), {
      message: 'credential password contains a newline or NUL',
    });
  });

  test("git's answer: a line without '=' is no field", () => {
    assert.deepStrictEqual(parseCredential('usernamex\npasswordy\nhost=h\n'), { host: 'h' });
  });
});
