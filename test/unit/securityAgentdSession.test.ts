/**
 * agentd's session server, protocol, exec steps, native helper wrapper, settings and supervisor,
 * in process (test/unit/agentd.test.ts runs the built bundle as a child, whose coverage Stryker
 * cannot see). The session server is real mutual TLS on 127.0.0.1 with certificates from a fresh
 * CA; limits and timeouts are injected small. Exec steps run over a FIFO with a fake process table,
 * the native helper over a stand-in for process.dlopen.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, constants as fsConstants, fstatSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, mock, test } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import { CONTROLPLANE_SESSION_CN, SESSION_MAX_LINE, type SessionRequest } from '../../src/core/agents/agentContract';
import { createCertificateAuthority } from '../../src/core/pki/authority';
import { issueControlPlaneSessionCertificate, issueSessionCertificate, type SessionCertificate } from '../../src/core/pki/sessionCertificate';
import { commandFromArgv, readConfig } from '../../src/agentd/config';
import { EXEC_DEFAULT_TIMEOUT_MS, type ExecStepResult, OutputTail, runExecStep } from '../../src/agentd/execStep';
import { loadNativeProcessControl, type SpawnRequest } from '../../src/agentd/nativeProc';
import { isControlPlanePeer, rateLimitedLog, readSessionMaterial, type SessionMaterial, type SessionServer, startSessionServer } from '../../src/agentd/session';
import { answer, encodeResponse, LineReader, parseRequestLine, type SessionHandlers } from '../../src/agentd/sessionProtocol';
import { type CommandStatus, type ExitStatus, signalName, Supervisor } from '../../src/agentd/supervisor';
import { FakeProcessTable } from '../helpers/fakeProcessTable';

const realSetTimeout = setTimeout;
const realClearTimeout = clearTimeout;
const sleep = (ms: number) => new Promise((resolve) => realSetTimeout(resolve, ms));
/** Resolves with the promise's value, or 'pending' when it has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: ReturnType<typeof realSetTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<'pending'>((resolve) => (timer = realSetTimeout(() => resolve('pending'), ms)))]);
  } finally {
    realClearTimeout(timer);
  }
}

const work = mkdtempSync(join(tmpdir(), 'clawker-agentd-session-'));
after(() => rmSync(work, { recursive: true, force: true }));

const ca = createCertificateAuthority();
const otherCa = createCertificateAuthority();
const serverCert = issueSessionCertificate(ca, { commonName: 'agentd', usage: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
const controlPlane = issueControlPlaneSessionCertificate(ca);
const MATERIAL: SessionMaterial = { ca: ca.certificatePem, certificate: serverCert.certificatePem, key: serverCert.privateKeyPem };

// ---- the session server ------------------------------------------------------------------------

interface Calls {
  status: number;
  start: number;
  exec: { request: Extract<SessionRequest, { op: 'exec' }>; resolve: (result: ExecStepResult) => void }[];
}

function handlers(calls: Calls): SessionHandlers {
  return {
    status: () => {
      calls.status += 1;
      return { state: 'waiting', command: ['claude'] };
    },
    start: () => {
      calls.start += 1;
      return { state: 'running', command: ['claude'], pid: 42 };
    },
    exec: (request) => new Promise((resolve) => calls.exec.push({ request, resolve })),
  };
}

async function server(limits: { maxConnections?: number; handshakeTimeoutMs?: number; idleTimeoutMs?: number; maxInFlight?: number } = {}) {
  const logs: string[] = [];
  const calls: Calls = { status: 0, start: 0, exec: [] };
  const session = await startSessionServer(MATERIAL, { host: '127.0.0.1', port: 0, handlers: handlers(calls), log: (line) => logs.push(line), limits: limits as never });
  return { session, logs, calls, port: session.address.port };
}

interface Client {
  readonly socket: TLSSocket;
  /** Everything the server sent. */
  received(): string;
  /** Resolves when the received text has `count` lines. */
  lines(count: number): Promise<string[]>;
  send(text: string): void;
  /** Whether the TLS handshake completed on the client's side. */
  secured(): boolean;
  readonly closed: Promise<void>;
}

function client(port: number, certificate: SessionCertificate | null = controlPlane, options: { allowHalfOpen?: boolean } = {}): Client {
  const socket = connect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca: ca.certificatePem,
    minVersion: 'TLSv1.3',
    ...(certificate ? { key: certificate.privateKeyPem, cert: certificate.certificatePem } : {}),
    ...options,
  });
  let text = '';
  let secure = false;
  const waiters = new Set<() => void>();
  socket.on('secureConnect', () => (secure = true));
  socket.on('data', (chunk) => {
    text += chunk;
    waiters.forEach((waiter) => waiter());
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const queue: string[] = [];
  socket.on('secureConnect', () => queue.splice(0).forEach((line) => socket.write(line)));
  return {
    socket,
    received: () => text,
    lines: (count) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const lines = text.split('\n').slice(0, -1);
          if (lines.length < count) return;
          waiters.delete(check);
          resolve(lines);
        };
        waiters.add(check);
        check();
        void closed.then(() => {
          if (waiters.has(check)) reject(new Error(`closed after ${JSON.stringify(text)}, expected ${count} lines`));
        });
      }),
    send: (line) => (secure ? socket.write(line) : queue.push(line)),
    secured: () => secure,
    closed,
  };
}

const ok = (id: number) => `{"id":${id},"ok":true,"state":"waiting","command":["claude"]}`;

describe('session server: who may talk to agentd', () => {
  test("the control plane's certificate is answered; blank lines are skipped", async () => {
    const { session, port, calls, logs } = await server();
    const cp = client(port);
    cp.send('\n   \r\n{"id":1,"op":"status"}\n\n{"id":2,"op":"start"}\n');
    assert.deepEqual(await cp.lines(2), [ok(1), '{"id":2,"ok":true,"state":"running","command":["claude"],"pid":42}']);
    assert.deepEqual([calls.status, calls.start], [1, 1]);
    assert.deepEqual(logs, []);
    cp.socket.destroy();
    await session.close();
  });

  test('a certificate from the clawker CA with another CN is refused after the handshake, unanswered, said once', async () => {
    const { session, port, calls, logs } = await server();
    const agent = issueSessionCertificate(ca, { commonName: 'clawker-agent', usage: 'client' });
    for (let i = 0; i < 3; i++) {
      const peer = client(port, agent);
      peer.send('{"id":1,"op":"start"}\n');
      await peer.closed;
      assert.equal(peer.received(), '');
    }
    assert.deepEqual([calls.status, calls.start], [0, 0]);
    assert.deepEqual(logs, ["session: refused 127.0.0.1: its certificate is not the control plane's (CN clawker-controlplane, clientAuth)"], 'at most one refusal line per interval');
    const cp = client(port);
    cp.send('{"id":3,"op":"status"}\n');
    assert.deepEqual(await cp.lines(1), [ok(3)], 'the refusals did not stop the server');
    cp.socket.destroy();
    await session.close();
  });

  test('a certificate from another CA with the right CN is refused in the handshake', async () => {
    const { session, port, calls, logs } = await server();
    const foreign = client(port, issueSessionCertificate(otherCa, { commonName: CONTROLPLANE_SESSION_CN, usage: 'client' }));
    foreign.send('{"id":1,"op":"start"}\n');
    await foreign.closed;
    assert.equal(foreign.received(), '');
    assert.equal(calls.start, 0);
    await sleep(20);
    assert.equal(logs.length, 1, logs.join('\n'));
    assert.match(logs[0]!, /^session: refused a connection from (127\.0\.0\.1|an unknown address): /);
    await session.close();
  });

  test('the right CN without the clientAuth purpose is refused', async () => {
    const { session, port, calls } = await server();
    const peer = client(port, issueSessionCertificate(ca, { commonName: CONTROLPLANE_SESSION_CN, usage: 'server' }));
    peer.send('{"id":1,"op":"start"}\n');
    await peer.closed;
    assert.equal(peer.received(), '');
    assert.equal(calls.start, 0);
    await session.close();
  });

  test('no client certificate: refused in the handshake, with the address and the reason', async () => {
    const { session, port, calls, logs } = await server();
    const anonymous = client(port, null);
    anonymous.send('{"id":1,"op":"start"}\n');
    await anonymous.closed;
    assert.equal(anonymous.received(), '');
    assert.equal(calls.start, 0);
    await sleep(20);
    assert.equal(logs.length, 1, logs.join('\n'));
    assert.match(logs[0]!, /^session: refused a connection from 127\.0\.0\.1: .*peer did not return a certificate/);
    await session.close();
  });

  test('isControlPlanePeer: clientAuth among other purposes counts; no purposes at all does not', () => {
    const peer = (ext_key_usage?: string[]) => ({ subject: { CN: CONTROLPLANE_SESSION_CN } as never, ext_key_usage });
    assert.equal(isControlPlanePeer(peer(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])), true);
    assert.equal(isControlPlanePeer(peer(undefined)), false);
    assert.equal(isControlPlanePeer(peer([])), false);
    assert.equal(isControlPlanePeer({ subject: undefined as never, ext_key_usage: ['1.3.6.1.5.5.7.3.2'] }), false);
  });

  test('rateLimitedLog: a refusal exactly one interval after the last is shown', () => {
    const lines: string[] = [];
    let clock = 1000;
    const log = rateLimitedLog((line) => lines.push(line), 100, () => clock);
    log('a');
    clock = 1099;
    log('b');
    clock = 1100;
    log('c');
    clock = 1200;
    log('d');
    assert.deepEqual(lines, ['a', 'c (and 1 more refusals not shown)', 'd']);
  });
});

describe('session server: limits', () => {
  test('at most maxConnections at once; a slot frees when a connection ends', async () => {
    const { session, port } = await server({ maxConnections: 1 });
    const first = client(port);
    first.send('{"id":1,"op":"status"}\n');
    assert.deepEqual(await first.lines(1), [ok(1)]);
    const second = client(port);
    second.send('{"id":2,"op":"status"}\n');
    await second.closed;
    assert.equal(second.received(), '');
    first.socket.destroy();
    await first.closed;
    await sleep(20);
    const third = client(port);
    third.send('{"id":3,"op":"status"}\n');
    assert.deepEqual(await third.lines(1), [ok(3)]);
    third.socket.destroy();
    await session.close();
  });

  test('a connection that never completes the handshake is dropped after handshakeTimeoutMs', async () => {
    const { session, port, logs } = await server({ handshakeTimeoutMs: 100 });
    const raw = netConnect({ host: '127.0.0.1', port });
    raw.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => raw.on('close', () => resolve()));
    assert.equal(await within(closed, 3000), undefined, 'the silent connection was closed');
    await sleep(20);
    assert.deepEqual(logs, ['session: refused a connection from 127.0.0.1: TLS handshake timeout']);
    await session.close();
  });

  test('an idle connection is closed after idleTimeoutMs, but not while a request is in flight', async () => {
    const { session, port, calls } = await server({ idleTimeoutMs: 100 });
    const idle = client(port);
    idle.send('{"id":1,"op":"status"}\n');
    await idle.lines(1);
    assert.equal(await within(idle.closed, 3000), undefined, 'an idle connection is closed');

    const busy = client(port);
    busy.send('{"id":2,"op":"exec","argv":["sleep","1"]}\n');
    while (calls.exec.length === 0) await sleep(5);
    assert.equal(await within(busy.closed, 400), 'pending', 'a long exec step is not idleness');
    calls.exec[0]!.resolve({ ok: true, exitCode: 0, output: 'done' });
    assert.deepEqual(await busy.lines(1), ['{"id":2,"ok":true,"exitCode":0,"output":"done"}']);
    assert.equal(await within(busy.closed, 3000), undefined, 'idle again once answered');
    await session.close();
  });

  test('a line longer than the limit closes the connection unanswered', async () => {
    const { session, port, logs, calls } = await server();
    const flood = client(port);
    flood.send('{"id":1,"op":"status"}\n');
    await flood.lines(1);
    flood.send('x'.repeat(SESSION_MAX_LINE + 1));
    await flood.closed;
    assert.equal(flood.received(), `${ok(1)}\n`);
    assert.equal(calls.status, 1);
    assert.deepEqual(logs, ['session: a request line exceeded the limit; closing the connection']);
    await session.close();
  });

  test('at most maxInFlight unanswered requests per connection; answered ones free their slot', async () => {
    const { session, port, calls } = await server({ maxInFlight: 2 });
    const cp = client(port);
    cp.send('{"id":1,"op":"exec","argv":["a"]}\n{"id":2,"op":"exec","argv":["b"]}\n{"id":3,"op":"exec","argv":["c"]}\n');
    assert.deepEqual(await cp.lines(1), ['{"id":3,"ok":false,"error":"too many requests in flight (at most 2)"}']);
    assert.deepEqual(calls.exec.map((call) => call.request.argv), [['a'], ['b']]);
    calls.exec[0]!.resolve({ ok: true, exitCode: 0, output: '' });
    assert.equal((await cp.lines(2))[1], '{"id":1,"ok":true,"exitCode":0,"output":""}');
    cp.send('{"id":4,"op":"exec","argv":["d"]}\n{"id":5,"op":"exec","argv":["e"]}\n');
    assert.equal((await cp.lines(3))[2], '{"id":5,"ok":false,"error":"too many requests in flight (at most 2)"}');
    assert.deepEqual(calls.exec.map((call) => call.request.argv), [['a'], ['b'], ['d']]);
    calls.exec[1]!.resolve({ ok: false, error: 'b failed' });
    calls.exec[2]!.resolve({ ok: true, exitCode: 1, output: 'd' });
    assert.deepEqual((await cp.lines(5)).slice(3).sort(), ['{"id":2,"ok":false,"error":"b failed"}', '{"id":4,"ok":true,"exitCode":1,"output":"d"}']);
    cp.socket.destroy();
    await session.close();
  });
});

describe('session server: malformed requests', () => {
  test('a line that is not JSON: answered with id 0, then the connection is closed and the rest ignored', async () => {
    const { session, port, calls } = await server();
    const cp = client(port);
    cp.send('not json\n{"id":1,"op":"start"}\n');
    await cp.closed;
    assert.equal(cp.received(), '{"id":0,"ok":false,"error":"a request must be one JSON object per line"}\n');
    assert.equal(calls.start, 0);
    await session.close();
  });

  test('an invalid request with an id is answered and the connection stays', async () => {
    const { session, port } = await server();
    const cp = client(port);
    cp.send('{"id":5,"op":"exec","argv":[]}\n{"id":6,"op":"status"}\n');
    assert.deepEqual(await cp.lines(2), ['{"id":5,"ok":false,"error":"invalid request: argv: Too small: expected array to have >=1 items"}', ok(6)]);
    cp.socket.destroy();
    await session.close();
  });

  test('listening on a port in use fails to start', async () => {
    const { session, port } = await server();
    await assert.rejects(
      startSessionServer(MATERIAL, { host: '127.0.0.1', port, handlers: handlers({ status: 0, start: 0, exec: [] }), log: () => undefined }),
      /EADDRINUSE/,
    );
    await session.close();
  });
});

describe('session server: close', () => {
  // The grace timer is frozen: close() must finish on its own when the connections go.
  const closeWithoutGrace = async (session: SessionServer) => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      return await within(session.close(), 2000);
    } finally {
      mock.timers.reset();
    }
  };

  test('with no connection it resolves at once and stops listening', async () => {
    const { session, port } = await server();
    assert.equal(await closeWithoutGrace(session), undefined);
    const late = netConnect({ host: '127.0.0.1', port });
    const refused = await new Promise<string>((resolve) => late.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? '')));
    assert.equal(refused, 'ECONNREFUSED');
  });

  test('open connections are ended, and close resolves when they are gone', async () => {
    const { session, port } = await server();
    const a = client(port);
    const b = client(port);
    a.send('{"id":1,"op":"status"}\n');
    b.send('{"id":2,"op":"status"}\n');
    await a.lines(1);
    await b.lines(1);
    assert.equal(await closeWithoutGrace(session), undefined);
    assert.notEqual(await within(Promise.all([a.closed, b.closed]), 2000), 'pending');
  });
});

// ---- the session files --------------------------------------------------------------------------

describe('readSessionMaterial', () => {
  const dir = join(work, 'files');
  mkdirSync(dir, { mode: 0o700 });
  const files = { ca: join(dir, 'ca.pem'), certificate: join(dir, 'agentd.pem'), key: join(dir, 'agentd-key.pem') };
  writeFileSync(files.ca, 'CA', { mode: 0o600 });
  writeFileSync(files.certificate, 'CERT', { mode: 0o600 });
  writeFileSync(files.key, 'KEY', { mode: 0o600 });

  test("a key that is agentd's alone: the three files' contents", () => {
    chmodSync(files.key, 0o600);
    assert.deepEqual(readSessionMaterial(files), { material: { ca: 'CA', certificate: 'CERT', key: 'KEY' } });
  });

  test('a key others may read or write is refused, with its mode', () => {
    chmodSync(files.key, 0o640);
    assert.deepEqual(readSessionMaterial(files), { problem: `${files.key} is readable by others (mode 640); it must be 0600` });
    chmodSync(files.key, 0o602);
    assert.deepEqual(readSessionMaterial(files), { problem: `${files.key} is readable by others (mode 602); it must be 0600` });
    chmodSync(files.key, 0o600);
  });

  test('a key owned by another user is refused', { skip: process.getuid?.() !== 0 && 'needs root to chown' }, () => {
    const foreign = join(dir, 'foreign-key.pem');
    writeFileSync(foreign, 'KEY', { mode: 0o600 });
    chownSync(foreign, 1001, 1001);
    assert.deepEqual(readSessionMaterial({ ...files, key: foreign }), { problem: `${foreign} belongs to uid 1001, not to agentd (uid 0)` });
  });

  test('missing and unreadable files: the path and the errno, never the contents', () => {
    assert.deepEqual(readSessionMaterial({ ...files, key: join(dir, 'nope.pem') }), { problem: `${join(dir, 'nope.pem')} does not exist` });
    assert.deepEqual(readSessionMaterial({ ...files, ca: join(dir, 'nope-ca.pem') }), { problem: `${join(dir, 'nope-ca.pem')} does not exist` });
    // A directory where the CA should be: the read fails without a path.
    assert.deepEqual(readSessionMaterial({ ...files, ca: dir }), { problem: 'cannot read the session files: EISDIR' });
  });
});

// ---- the protocol -------------------------------------------------------------------------------

describe('protocol', () => {
  test('LineReader: a line of exactly the limit is accepted, one byte more is not', () => {
    assert.deepEqual(new LineReader(4).push(Buffer.from('1234\n')), ['1234']);
    const pending = new LineReader(4);
    assert.deepEqual(pending.push(Buffer.from('1234')), []);
    assert.deepEqual(pending.push(Buffer.from('\n')), ['1234']);
    const growing = new LineReader(4);
    assert.deepEqual(growing.push(Buffer.from('12')), []);
    assert.deepEqual(growing.push(Buffer.from('34')), []);
    assert.equal(growing.push(Buffer.from('5')), 'too-long');
    const split = new LineReader(4);
    assert.deepEqual(split.push(Buffer.from('123')), []);
    assert.equal(split.push(Buffer.from('45\n')), 'too-long');
  });

  test('LineReader: only a carriage return at the end of a line is dropped', () => {
    assert.deepEqual(new LineReader().push(Buffer.from('a\rb\r\n\r\r\n')), ['a\rb', '\r']);
  });

  test('parseRequestLine: the exact reasons', () => {
    assert.deepEqual(parseRequestLine('{"id":1,'), { fatal: 'a request must be one JSON object per line' });
    assert.deepEqual(parseRequestLine('null'), { fatal: 'invalid request: Invalid input: expected object, received null' });
    assert.deepEqual(parseRequestLine('5'), { fatal: 'invalid request: Invalid input: expected object, received number' });
    assert.deepEqual(parseRequestLine('{"op":"status"}'), { fatal: 'invalid request: id: Invalid input: expected number, received undefined' });
    assert.deepEqual(parseRequestLine('{"id":0,"op":"x"}'), { id: 0, error: "invalid request: op: Invalid discriminator value. Expected 'status' | 'start' | 'exec'" });
    assert.deepEqual(parseRequestLine('{"id":1.5,"op":"x"}').hasOwnProperty('fatal'), true);
    assert.deepEqual(parseRequestLine('{"id":"1","op":"x"}').hasOwnProperty('fatal'), true);
    assert.deepEqual(parseRequestLine('{"id":1,"op":"exec","argv":[1,2,3,4,5]}'), {
      id: 1,
      error:
        'invalid request: argv.0: Invalid input: expected string, received number; argv.1: Invalid input: expected string, received number; argv.2: Invalid input: expected string, received number',
    });
  });

  test('answer: every status field the handler gives, start and exec included', async () => {
    const status: CommandStatus = { state: 'exited', command: ['claude'], pid: 9, exitCode: 143, signal: 'SIGTERM' };
    const h: SessionHandlers = { status: () => status, start: () => status, exec: async () => ({ ok: false, error: 'x timed out', exitCode: 137, signal: 'SIGKILL', output: 'o' }) };
    const full = { ok: true, state: 'exited', command: ['claude'], pid: 9, exitCode: 143, signal: 'SIGTERM' };
    assert.deepEqual(await answer({ id: 1, op: 'status' }, h), { id: 1, ...full });
    assert.deepEqual(await answer({ id: 2, op: 'start' }, h), { id: 2, ...full });
    assert.deepEqual(await answer({ id: 3, op: 'exec', argv: ['x'] }, h), { id: 3, ok: false, error: 'x timed out', exitCode: 137, signal: 'SIGKILL', output: 'o' });
    assert.equal(encodeResponse({ id: 4, ok: true }), '{"id":4,"ok":true}\n');
  });
});

// ---- settings -----------------------------------------------------------------------------------

describe('config', () => {
  test('the command is everything after the first --, wherever it is', () => {
    assert.deepEqual(commandFromArgv(['x', '--', 'claude', '--', 'y']), ['claude', '--', 'y']);
    assert.deepEqual(commandFromArgv(['claude', '-c']), ['claude', '-c']);
  });

  test('the session port: digits only, 0 to 65535; empty means the default', () => {
    const port = (value: string) => {
      const result = readConfig(['--', 'claude'], { CLAWKER_AGENTD_PORT: value });
      return 'config' in result ? result.config.sessionPort : result.error;
    };
    assert.equal(port(''), 17443);
    assert.equal(port('65535'), 65535);
    assert.equal(port('0'), 0);
    for (const bad of ['65536', '-1', '1e3', '0x10', ' 80', '80 ', '123456', '8.5']) {
      assert.equal(port(bad), 'CLAWKER_AGENTD_PORT must be a port number (0-65535)', bad);
    }
  });
});

// ---- the supervisor -----------------------------------------------------------------------------

function supervisor(command: string[] = ['claude'], workdirs: string[] = ['/workspace']) {
  const processes = new FakeProcessTable();
  const exits: ExitStatus[] = [];
  const s = new Supervisor({ command, env: {}, uid: 1001, gid: 1001, workdirs, foreground: false }, { processes, isDirectory: () => false, onCommandExit: (status) => exits.push(status) });
  return { processes, supervisor: s, exits };
}

describe('supervisor', () => {
  test('signal names, and a number for an unknown signal', () => {
    assert.equal(signalName(9), 'SIGKILL');
    assert.equal(signalName(99), 'signal 99');
  });

  test('no working directory at all: /', () => {
    assert.equal(supervisor(['claude'], []).supervisor.workdir(), '/');
  });

  test('nothing to start, nothing to exec: refused before any fork', () => {
    const { processes, supervisor: s } = supervisor([]);
    assert.throws(() => s.start(), { message: 'no command to start' });
    assert.throws(() => s.spawnAgentProcess({ argv: [], env: {}, cwd: '/', stdin: 0, stdout: 1, stderr: 2 }), { message: 'empty argv' });
    assert.deepEqual(processes.spawned, []);
  });

  test("killGroup and killAll signal process groups; before the command started, only the steps'", () => {
    const { processes, supervisor: s } = supervisor();
    const step = s.spawnAgentProcess({ argv: ['id'], env: {}, cwd: '/', stdin: 0, stdout: 1, stderr: 2 });
    assert.equal(s.killGroup(step.pid, 9), true);
    s.killAll(15);
    assert.deepEqual(processes.killed, [[-100, 9], [-100, 15]]);
  });

  test("an exec step that got the exited command's pid is a step, not the command", async () => {
    const { processes, supervisor: s, exits } = supervisor();
    s.start();
    processes.exited = [{ pid: 100, exitCode: 0, signal: null }];
    s.reapChildren();
    assert.equal(exits.length, 1);
    processes.nextPid = 100;
    const step = s.spawnAgentProcess({ argv: ['id'], env: {}, cwd: '/', stdin: 0, stdout: 1, stderr: 2 });
    assert.equal(step.pid, 100);
    processes.exited = [{ pid: 100, exitCode: 4, signal: null }];
    s.reapChildren();
    assert.deepEqual(await within(step.exited, 1000), { exitCode: 4, signal: null });
    assert.equal(exits.length, 1);
    assert.equal(s.status().exitCode, 0);
  });
});

// ---- exec steps ---------------------------------------------------------------------------------

let fifos = 0;
/** A pipe from a FIFO: [read end, write end], and the FIFO's inode (to tell whether an fd is still ours). */
function fifoPipe(): { fds: [number, number]; path: string; ino: number } {
  const path = join(work, `fifo-${fifos++}`);
  assert.equal(spawnSync('mkfifo', [path]).status, 0, 'mkfifo');
  const read = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  const write = openSync(path, 'w');
  return { fds: [read, write], path, ino: statSync(path).ino };
}

const refersTo = (fd: number, ino: number): boolean => {
  try {
    return fstatSync(fd).ino === ino;
  } catch {
    return false;
  }
};

/** The fake process table, where a "step" writes its output synchronously when spawned. */
class StepTable extends FakeProcessTable {
  onSpawn: (request: SpawnRequest) => void = () => undefined;
  stdinWasDevNull: boolean | undefined;
  override spawn(request: SpawnRequest): number {
    const pid = super.spawn(request);
    if (request.stdin !== undefined) {
      const stdin = fstatSync(request.stdin);
      this.stdinWasDevNull = stdin.isCharacterDevice() && stdin.rdev === statSync('/dev/null').rdev;
    }
    this.onSpawn(request);
    return pid;
  }
}

function execHarness() {
  const processes = new StepTable();
  const s = new Supervisor({ command: ['claude'], env: {}, uid: 1001, gid: 1001, workdirs: ['/workspace'], foreground: false }, { processes, isDirectory: () => true, onCommandExit: () => undefined });
  const pipe = fifoPipe();
  const context = { supervisor: s, pipe: () => pipe.fds, baseEnv: { HOME: '/home/claude', PATH: '/bin' } };
  const exit = (pid: number, exitCode: number | null, signal: number | null = null) => {
    processes.exited = [{ pid, exitCode, signal }];
    s.reapChildren();
  };
  return { processes, supervisor: s, pipe, context, exit };
}

describe('exec steps', () => {
  test("as the agent user, in the agent's environment with the request's over it, stdin /dev/null, output from one pipe", async () => {
    const { processes, pipe, context, exit } = execHarness();
    processes.onSpawn = (request) => {
      writeSync(request.stdout!, 'out\n');
      writeSync(request.stderr!, 'err\n');
      realSetTimeout(() => exit(100, 3), 10);
    };
    const result = await runExecStep(context, { argv: ['sh', '-c', 'x'], env: { PATH: '/usr/bin', GREETING: 'hi' } });
    assert.deepEqual(result, { ok: true, exitCode: 3, output: 'out\nerr\n' });
    const spawned = processes.spawned[0]!;
    assert.deepEqual(
      { ...spawned, stdin: undefined },
      { file: 'sh', argv: ['sh', '-c', 'x'], env: { HOME: '/home/claude', PATH: '/usr/bin', GREETING: 'hi' }, cwd: '/workspace', uid: 1001, gid: 1001, foreground: false, stdin: undefined, stdout: pipe.fds[1], stderr: pipe.fds[1] },
    );
    assert.equal(processes.stdinWasDevNull, true);
    assert.ok(!refersTo(pipe.fds[0], pipe.ino) && !refersTo(pipe.fds[1], pipe.ino), 'both ends of the pipe are closed');
    assert.ok(!refersTo(spawned.stdin!, statSync('/dev/null').ino) || fstatSync(spawned.stdin!).rdev !== statSync('/dev/null').rdev, '/dev/null is closed');
  });

  test('without env or cwd: the base environment, the supervisor’s workdir; a signal is named', async () => {
    const { processes, context, exit } = execHarness();
    processes.onSpawn = () => realSetTimeout(() => exit(100, null, 15), 10);
    assert.deepEqual(await runExecStep(context, { argv: ['true'], cwd: '/tmp' }), { ok: true, exitCode: 143, signal: 'SIGTERM', output: '' });
    assert.deepEqual(processes.spawned[0]!.env, { HOME: '/home/claude', PATH: '/bin' });
    assert.equal(processes.spawned[0]!.cwd, '/tmp');
  });

  test('past its timeout the whole process group is killed and the step reported as timed out', async () => {
    const { processes, context, exit } = execHarness();
    processes.onSpawn = (request) => writeSync(request.stdout!, 'before\n');
    const killed = new Promise<void>((resolve) => {
      processes.kill = (pid, signal) => {
        processes.killed.push([pid, signal]);
        realSetTimeout(() => exit(100, null, 9), 5);
        resolve();
        return true;
      };
    });
    const result = await within(runExecStep(context, { argv: ['sleep', '20'], timeoutMs: 30 }), 3000);
    await killed;
    assert.deepEqual(processes.killed, [[-100, 9]]);
    assert.deepEqual(result, { ok: false, error: 'sleep timed out after 30 ms and was killed', exitCode: 137, signal: 'SIGKILL', output: 'before\n' });
  });

  test('a kill that fails is not an error: the reaper still reports the end', async () => {
    const { processes, context, exit } = execHarness();
    processes.killFails = new Error('ESRCH');
    processes.onSpawn = () => realSetTimeout(() => exit(100, 0), 100);
    assert.deepEqual(await within(runExecStep(context, { argv: ['x'], timeoutMs: 20 }), 3000), { ok: false, error: 'x timed out after 20 ms and was killed', exitCode: 0, output: '' });
  });

  test('the default timeout is a minute', async () => {
    assert.equal(EXEC_DEFAULT_TIMEOUT_MS, 60_000);
    const { processes, context, exit } = execHarness();
    processes.onSpawn = () => realSetTimeout(() => exit(100, 0), 50);
    assert.deepEqual(await runExecStep(context, { argv: ['x'] }), { ok: true, exitCode: 0, output: '' });
  });

  test('a step that leaves something holding the pipe open: the reply does not wait for it', async () => {
    const { processes, pipe, context, exit } = execHarness();
    let holder: number | undefined;
    processes.onSpawn = (request) => {
      writeSync(request.stdout!, 'started\n');
      holder = openSync(pipe.path, 'w');
      realSetTimeout(() => exit(100, 0), 10);
    };
    try {
      assert.deepEqual(await within(runExecStep(context, { argv: ['x'] }), 3000), { ok: true, exitCode: 0, output: 'started\n' });
    } finally {
      if (holder !== undefined) closeSync(holder);
    }
  });

  test('a spawn that fails: its message, and the pipe closed', async () => {
    const { processes, pipe, context } = execHarness();
    processes.failWith = new Error('exec nope: No such file or directory');
    assert.deepEqual(await runExecStep(context, { argv: ['nope'] }), { ok: false, error: 'exec nope: No such file or directory' });
    assert.ok(!refersTo(pipe.fds[0], pipe.ino) && !refersTo(pipe.fds[1], pipe.ino));
  });

  test('a read error on the output pipe ends the step normally', async () => {
    const { processes, context, exit } = execHarness();
    const path = join(work, `fifo-${fifos++}`);
    assert.equal(spawnSync('mkfifo', [path]).status, 0);
    const reader = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    // A write-only descriptor where the read end should be: reading it fails with EBADF.
    const writeOnly = openSync(path, 'w');
    const other = openSync(path, 'w');
    try {
      processes.onSpawn = () => realSetTimeout(() => exit(100, 0), 10);
      assert.deepEqual(await within(runExecStep({ ...context, pipe: () => [writeOnly, other] }, { argv: ['x'] }), 3000), { ok: true, exitCode: 0, output: '' });
    } finally {
      closeSync(reader);
    }
  });

  test('OutputTail: drops whole chunks only while the rest still fills the limit', () => {
    const tail = new OutputTail(4);
    tail.push(Buffer.from('ab'));
    tail.push(Buffer.from('cd'));
    assert.equal(tail.text(), 'abcd');
    tail.push(Buffer.from('e'));
    assert.equal(tail.text(), 'bcde');
    const one = new OutputTail(4);
    one.push(Buffer.from('abcdef'));
    assert.equal(one.text(), 'cdef');
    one.push(Buffer.from('g'));
    assert.equal(one.text(), 'defg');
  });
});

// ---- the native helper --------------------------------------------------------------------------

describe('native helper wrapper', () => {
  const addon = () => {
    const calls: unknown[] = [];
    return {
      calls,
      exports: {
        spawn: (options: unknown) => (calls.push(['spawn', options]), 1234),
        reap: () => (calls.push(['reap']), [{ pid: 1, exitCode: 0, signal: null }]),
        pipe: () => (calls.push(['pipe']), [5, 6]),
        becomeSubreaper: () => void calls.push(['becomeSubreaper']),
      } as Record<string, unknown>,
    };
  };
  const withAddon = <T>(exports: Record<string, unknown>, run: () => T): T => {
    const dlopen = mock.method(process, 'dlopen', (module: { exports: unknown }) => {
      module.exports = exports;
    });
    try {
      return run();
    } finally {
      dlopen.mock.restore();
    }
  };

  test('every function is passed through; undefined descriptors become -1', () => {
    const fake = addon();
    const native = withAddon(fake.exports, () => loadNativeProcessControl('/x/agentd_proc.node'));
    assert.equal(native.spawn({ file: 'sh', argv: ['sh'], env: { A: '1' }, cwd: '/w', uid: 1001, gid: 1002, foreground: true }), 1234);
    native.spawn({ file: 'sh', argv: ['sh'], env: {}, cwd: '/w', uid: 1001, gid: 1001, foreground: false, stdin: 0, stdout: 7, stderr: 8 });
    assert.deepEqual(native.reap(), [{ pid: 1, exitCode: 0, signal: null }]);
    assert.deepEqual(native.pipe(), [5, 6]);
    native.becomeSubreaper();
    assert.deepEqual(fake.calls, [
      ['spawn', { file: 'sh', argv: ['sh'], env: ['A=1'], cwd: '/w', uid: 1001, gid: 1002, foreground: true, stdin: -1, stdout: -1, stderr: -1 }],
      ['spawn', { file: 'sh', argv: ['sh'], env: [], cwd: '/w', uid: 1001, gid: 1001, foreground: false, stdin: 0, stdout: 7, stderr: 8 }],
      ['reap'],
      ['pipe'],
      ['becomeSubreaper'],
    ]);
  });

  test('a library without one of the functions is not the helper', () => {
    for (const name of ['spawn', 'reap', 'pipe', 'becomeSubreaper']) {
      const fake = addon();
      delete fake.exports[name];
      assert.throws(() => withAddon(fake.exports, () => loadNativeProcessControl('/x/other.node')), { message: `/x/other.node is not agentd's native helper: it has no ${name}()` });
    }
  });

  test('kill: true when sent, false when there is no such process, other errors thrown', () => {
    const native = withAddon(addon().exports, () => loadNativeProcessControl('/x/agentd_proc.node'));
    assert.equal(native.kill(process.pid, 0), true);
    // Far above any pid_max: no such process.
    assert.equal(native.kill(2 ** 30, 0), false);
    assert.throws(() => native.kill(process.pid, 4096), { code: 'EINVAL' });
  });

  test('an invalid environment variable is named, unprintable characters as ?', () => {
    const native = withAddon(addon().exports, () => loadNativeProcessControl('/x/agentd_proc.node'));
    assert.throws(() => native.spawn({ file: 'sh', argv: ['sh'], env: { 'A\nB=': '1' }, cwd: '/', uid: 1001, gid: 1001, foreground: false }), {
      message: "invalid environment variable name or value for 'A?B='",
    });
  });
});
