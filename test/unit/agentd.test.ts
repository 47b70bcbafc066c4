/**
 * agentd, the agent containers' PID 1: its pure logic with a fake process table, and the real
 * bundle (esbuild, as the image ships it) with the real native helper, run as a child process on
 * this machine. The tests run as root, so the drop to uid 1001 is real. Not PID 1 here: agentd makes
 * itself a subreaper so orphans still come to it.
 *
 * Test-only knobs (see src/agentd/config.ts): CLAWKER_AGENTD_NATIVE, CLAWKER_AGENTD_SESSION_DIR,
 * CLAWKER_AGENTD_PORT (0 = any, announced on stderr), CLAWKER_AGENTD_HOST, CLAWKER_AGENTD_WORKDIR.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { after, afterEach, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import { AGENT_HOME, AGENT_UID, CONTROLPLANE_SESSION_CN, SESSION_MAX_LINE, type SessionResponse } from '../../src/core/agents/agentContract';
import { createCertificateAuthority } from '../../src/core/pki/authority';
import { issueControlPlaneSessionCertificate, issueSessionCertificate, type SessionCertificate } from '../../src/core/pki/sessionCertificate';
import { commandEnvironment, commandFromArgv, firewallEnabled, readConfig } from '../../src/agentd/config';
import { OutputTail } from '../../src/agentd/execStep';
import { environmentBlock, loadNativeProcessControl } from '../../src/agentd/nativeProc';
import { isControlPlanePeer, rateLimitedLog } from '../../src/agentd/session';
import { answer, LineReader, parseRequestLine } from '../../src/agentd/sessionProtocol';
import { decideSignal, exitCodeOf, type ExitStatus, Supervisor } from '../../src/agentd/supervisor';
import { FakeProcessTable } from '../helpers/fakeProcessTable';

const repo = join(__dirname, '..', '..');

// ---- pure logic ---------------------------------------------------------------------------------

describe('config', () => {
  test('the command is what follows --', () => {
    assert.deepEqual(commandFromArgv(['--', 'claude', '--resume']), ['claude', '--resume']);
    assert.deepEqual(commandFromArgv(['claude']), ['claude']);
    assert.deepEqual(commandFromArgv(['--', 'sh', '-c', 'echo -- x']), ['sh', '-c', 'echo -- x']);
  });

  test('only an explicit false turns the start gate off (fail closed)', () => {
    assert.equal(firewallEnabled(undefined), true);
    assert.equal(firewallEnabled(''), true);
    assert.equal(firewallEnabled('true'), true);
    assert.equal(firewallEnabled('flase'), true);
    assert.equal(firewallEnabled('false'), false);
    assert.equal(firewallEnabled(' FALSE '), false);
  });

  test("the command's environment: agentd's own variables removed, the agent user's identity set", () => {
    const env = commandEnvironment({ HOME: '/root', USER: 'root', CLAWKER_AGENTD_PORT: '1', CLAWKER_PROJECT: 'p', TERM: 'xterm', PATH: '/bin' });
    assert.deepEqual(env, { HOME: AGENT_HOME, USER: 'claude', LOGNAME: 'claude', CLAWKER_PROJECT: 'p', TERM: 'xterm', PATH: '/bin' });
    assert.match(commandEnvironment({}).PATH!, /\/usr\/bin/);
  });

  test('readConfig: defaults from the contract, overrides for tests, errors', () => {
    const result = readConfig(['--', 'claude'], { CLAWKER_AGENTD_SESSION_DIR: '/s', CLAWKER_AGENTD_PORT: '0', CLAWKER_FIREWALL_ENABLED: 'false' });
    assert.ok('config' in result);
    assert.deepEqual(result.config.sessionFiles, { ca: '/s/ca.pem', certificate: '/s/agentd.pem', key: '/s/agentd-key.pem' });
    assert.equal(result.config.sessionPort, 0);
    assert.equal(result.config.waitForStart, false);
    const defaults = readConfig(['--', 'claude'], {});
    assert.ok('config' in defaults);
    assert.equal(defaults.config.sessionPort, 17443);
    assert.equal(defaults.config.sessionHost, '0.0.0.0');
    assert.equal(defaults.config.workdir, '/workspace');
    assert.equal(defaults.config.uid, 1001);
    assert.equal(defaults.config.sessionFiles.key, '/run/clawker/session/agentd-key.pem');
    assert.ok('error' in readConfig(['--'], {}));
    assert.ok('error' in readConfig(['--', 'x'], { CLAWKER_AGENTD_PORT: '70000' }));
    assert.ok('error' in readConfig(['--', 'x'], { CLAWKER_AGENTD_PORT: '12a' }));
  });
});

describe('signals and exit codes', () => {
  test('running: forwarded to the command group; waiting: TERM/INT/HUP/QUIT end agentd, others are ignored', () => {
    assert.deepEqual(decideSignal('SIGTERM', 'running', 42), { kind: 'forward', processGroup: 42 });
    assert.deepEqual(decideSignal('SIGWINCH', 'running', 42), { kind: 'forward', processGroup: 42 });
    assert.deepEqual(decideSignal('SIGTERM', 'waiting', undefined), { kind: 'exit', code: 143 });
    assert.deepEqual(decideSignal('SIGINT', 'waiting', undefined), { kind: 'exit', code: 130 });
    assert.deepEqual(decideSignal('SIGHUP', 'waiting', undefined), { kind: 'exit', code: 129 });
    assert.deepEqual(decideSignal('SIGUSR1', 'waiting', undefined), { kind: 'ignore' });
    assert.deepEqual(decideSignal('SIGTERM', 'exited', 42), { kind: 'ignore' });
  });

  test('exit code: the code, or 128 + signal', () => {
    assert.equal(exitCodeOf({ exitCode: 7, signal: null }), 7);
    assert.equal(exitCodeOf({ exitCode: null, signal: 15 }), 143);
  });
});

function fakeSupervisor(existing: string[] = ['/workspace']) {
  const processes = new FakeProcessTable();
  const exits: ExitStatus[] = [];
  const supervisor = new Supervisor(
    { command: ['claude', '--x'], env: { HOME: AGENT_HOME }, uid: 1001, gid: 1001, workdirs: ['/workspace', AGENT_HOME], foreground: true },
    { processes, isDirectory: (path) => existing.includes(path), onCommandExit: (status) => exits.push(status) },
  );
  return { processes, supervisor, exits };
}

describe('supervisor', () => {
  test('start forks the command once, as the agent user, in the workspace', () => {
    const { processes, supervisor } = fakeSupervisor();
    assert.deepEqual(supervisor.status(), { state: 'waiting', command: ['claude', '--x'] });
    const started = supervisor.start();
    assert.equal(started.state, 'running');
    assert.equal(started.pid, 100);
    assert.equal(supervisor.start().pid, 100, 'start is idempotent');
    assert.equal(processes.spawned.length, 1);
    assert.deepEqual(processes.spawned[0], {
      file: 'claude',
      argv: ['claude', '--x'],
      env: { HOME: AGENT_HOME },
      cwd: '/workspace',
      uid: 1001,
      gid: 1001,
      foreground: true,
    });
  });

  test('without the workspace mount the command starts in the agent home', () => {
    const { processes, supervisor } = fakeSupervisor([AGENT_HOME]);
    supervisor.start();
    assert.equal(processes.spawned[0]!.cwd, AGENT_HOME);
  });

  test('signals go to the command group; its exit ends the supervision; orphans are reaped silently', () => {
    const { processes, supervisor, exits } = fakeSupervisor();
    supervisor.start();
    assert.deepEqual(supervisor.handleSignal('SIGTERM'), { kind: 'forward', processGroup: 100 });
    assert.deepEqual(processes.killed, [[-100, 15]]);
    processes.exited = [{ pid: 555, exitCode: 0, signal: null }];
    supervisor.reapChildren();
    assert.equal(exits.length, 0, 'an orphan is not the command');
    processes.exited = [{ pid: 100, exitCode: null, signal: 15 }];
    supervisor.reapChildren();
    assert.deepEqual(exits, [{ exitCode: null, signal: 15 }]);
    assert.deepEqual(supervisor.status(), { state: 'exited', command: ['claude', '--x'], pid: 100, exitCode: 143, signal: 'SIGTERM' });
    assert.deepEqual(supervisor.handleSignal('SIGTERM'), { kind: 'ignore' });
  });

  test('exec steps are resolved by the reaper', async () => {
    const { processes, supervisor } = fakeSupervisor();
    const step = supervisor.spawnAgentProcess({ argv: ['id'], env: {}, cwd: '/', stdin: 0, stdout: 1, stderr: 2 });
    assert.equal(processes.spawned[0]!.foreground, false);
    assert.equal(processes.spawned[0]!.uid, 1001);
    processes.exited = [{ pid: step.pid, exitCode: 3, signal: null }];
    supervisor.reapChildren();
    assert.deepEqual(await step.exited, { exitCode: 3, signal: null });
  });

  test('a spawn failure propagates and leaves the command waiting', () => {
    const { processes, supervisor } = fakeSupervisor();
    processes.failWith = Object.assign(new Error('exec claude: No such file or directory'), { code: 'ENOENT' });
    assert.throws(() => supervisor.start(), /exec claude: No such file or directory/);
    assert.equal(supervisor.status().state, 'waiting');
    supervisor.markStartFailed(127);
    assert.equal(supervisor.status().state, 'exited');
  });
});

describe('exec output and the line protocol', () => {
  test('OutputTail keeps the last bytes', () => {
    const tail = new OutputTail(10);
    tail.push(Buffer.from('hello '));
    tail.push(Buffer.from('world, '));
    tail.push(Buffer.from('bye'));
    assert.equal(tail.text(), 'orld, bye'.padStart(10, 'w'));
    const big = new OutputTail(8 * 1024);
    for (let i = 0; i < 1000; i++) big.push(Buffer.from(`line ${i}\n`));
    assert.equal(Buffer.byteLength(big.text()), 8 * 1024);
    assert.ok(big.text().endsWith('line 999\n'));
  });

  test('LineReader splits on newlines across chunks and refuses an overlong line', () => {
    const reader = new LineReader(16);
    assert.deepEqual(reader.push(Buffer.from('{"a":1}\n{"b"')), ['{"a":1}']);
    assert.deepEqual(reader.push(Buffer.from(':2}\r\n\n')), ['{"b":2}', '']);
    const euro = Buffer.from('€\n');
    assert.deepEqual(reader.push(euro.subarray(0, 1)), []);
    assert.deepEqual(reader.push(euro.subarray(1)), ['€']);
    assert.equal(new LineReader(4).push(Buffer.from('12345')), 'too-long');
    assert.equal(new LineReader(4).push(Buffer.from('12345\n')), 'too-long');
  });

  test('parseRequestLine: valid, answerable error, fatal', () => {
    assert.deepEqual(parseRequestLine('{"id":1,"op":"status"}'), { request: { id: 1, op: 'status' } });
    const bad = parseRequestLine('{"id":2,"op":"exec","argv":[]}');
    assert.ok('error' in bad && bad.id === 2, JSON.stringify(bad));
    assert.ok('fatal' in parseRequestLine('not json'));
    assert.ok('fatal' in parseRequestLine('{"op":"status"}'));
    assert.ok('fatal' in parseRequestLine('{"id":-1,"op":"status"}'));
    assert.ok('error' in parseRequestLine('{"id":3,"op":"reboot"}'));
  });

  test('answer maps handlers to responses, errors included', async () => {
    const handlers = {
      status: () => ({ state: 'waiting' as const, command: ['claude'] }),
      start: () => {
        throw new Error('exec claude: No such file or directory');
      },
      exec: async () => ({ ok: true as const, exitCode: 0, output: 'hi' }),
    };
    assert.deepEqual(await answer({ id: 1, op: 'status' }, handlers), { id: 1, ok: true, state: 'waiting', command: ['claude'] });
    assert.deepEqual(await answer({ id: 2, op: 'start' }, handlers), { id: 2, ok: false, error: 'exec claude: No such file or directory' });
    assert.deepEqual(await answer({ id: 3, op: 'exec', argv: ['true'] }, handlers), { id: 3, ok: true, exitCode: 0, output: 'hi' });
  });

  test('isControlPlanePeer: exact CN and clientAuth', () => {
    const peer = (CN: unknown, ext_key_usage?: string[]) => ({ subject: { CN } as unknown as PeerCertificate['subject'], ext_key_usage });
    assert.equal(isControlPlanePeer(peer(CONTROLPLANE_SESSION_CN, ['1.3.6.1.5.5.7.3.2'])), true);
    assert.equal(isControlPlanePeer(peer(CONTROLPLANE_SESSION_CN, ['1.3.6.1.5.5.7.3.1'])), false);
    assert.equal(isControlPlanePeer(peer(CONTROLPLANE_SESSION_CN)), false);
    assert.equal(isControlPlanePeer(peer('clawker-controlplane.evil', ['1.3.6.1.5.5.7.3.2'])), false);
    assert.equal(isControlPlanePeer(peer([CONTROLPLANE_SESSION_CN, 'x'], ['1.3.6.1.5.5.7.3.2'])), false);
    assert.equal(isControlPlanePeer(undefined), false);
  });

  test('refusals are logged at most once per interval, with a count of the rest', () => {
    const lines: string[] = [];
    let clock = 0;
    const logRefusal = rateLimitedLog((line) => lines.push(line), 5000, () => clock);
    logRefusal('a');
    logRefusal('b');
    logRefusal('c');
    clock = 6000;
    logRefusal('d');
    assert.deepEqual(lines, ['a', 'd (and 2 more refusals not shown)']);
  });

  test('environmentBlock refuses what would corrupt the block', () => {
    assert.deepEqual(environmentBlock({ A: '1', B: 'x=y' }), ['A=1', 'B=x=y']);
    assert.throws(() => environmentBlock({ 'A=B': '1' }));
    assert.throws(() => environmentBlock({ A: 'a\0b' }));
    assert.throws(() => environmentBlock({ '': 'x' }));
  });
});

// ---- the real agentd ----------------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), 'clawker-agentd-'));
const nativeDir = join(work, 'native');
const bundle = join(work, 'agentd.js');
const sessionDir = join(work, 'session');
const ca = createCertificateAuthority();
const otherCa = createCertificateAuthority();
let controlPlane: SessionCertificate;
const running = new Set<ChildProcess>();

before(async () => {
  const built = spawnSync('bash', [join(repo, 'src/agentd/native/build.sh'), nativeDir], { encoding: 'utf8' });
  assert.equal(built.status, 0, `build.sh failed: ${built.stderr}`);
  // As the image gets it: one CommonJS file, the addon left outside.
  await build({
    entryPoints: [join(repo, 'src/agentd/main.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node18',
    external: ['*.node'],
    outfile: bundle,
    logLevel: 'warning',
  });
  mkdirSync(sessionDir, { mode: 0o700 });
  const server = issueSessionCertificate(ca, { commonName: 'agentd', usage: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  controlPlane = issueControlPlaneSessionCertificate(ca);
  writeFileSync(join(sessionDir, 'ca.pem'), ca.certificatePem, { mode: 0o600 });
  writeFileSync(join(sessionDir, 'agentd.pem'), server.certificatePem, { mode: 0o600 });
  writeFileSync(join(sessionDir, 'agentd-key.pem'), server.privateKeyPem, { mode: 0o600 });
  // The command runs as uid 1001: it needs a directory it may enter.
  chmodSync(work, 0o755);
});

afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});
after(() => rmSync(work, { recursive: true, force: true }));

interface Agentd {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves when the output matches; rejects after a timeout, showing what was said. */
  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  port(): Promise<number>;
}

function startAgentd(command: string[], options: { firewall?: string; sessionDir?: string; env?: Record<string, string> } = {}): Agentd {
  const env: Record<string, string> = {
    // Only directories uid 1001 may search: one it may not (/root/...) turns "not found" into EACCES, as with execvp.
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    CLAWKER_AGENTD_NATIVE: join(nativeDir, 'agentd_proc.node'),
    CLAWKER_AGENTD_SESSION_DIR: options.sessionDir ?? sessionDir,
    CLAWKER_AGENTD_PORT: '0',
    CLAWKER_AGENTD_HOST: '127.0.0.1',
    CLAWKER_AGENTD_WORKDIR: work,
    ...(options.firewall !== undefined ? { CLAWKER_FIREWALL_ENABLED: options.firewall } : {}),
    ...options.env,
  };
  const child = spawn(process.execPath, [bundle, '--', ...command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const output = { stdout: '', stderr: '' };
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (chunk) => {
    output.stdout += chunk;
    listeners.forEach((listener) => listener());
  });
  child.stderr!.on('data', (chunk) => {
    output.stderr += chunk;
    listeners.forEach((listener) => listener());
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      // Let the pipes drain before anyone reads the output.
      setTimeout(() => resolve({ code, signal }), 20);
    }),
  );
  const waitFor = (stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs = 5000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = output[stream].match(pattern);
        if (!match) return false;
        listeners.delete(check);
        clearTimeout(timer);
        resolve(match);
        return true;
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`timed out waiting for ${pattern} on ${stream}; stdout: ${output.stdout}\nstderr: ${output.stderr}`));
      }, timeoutMs);
      if (!check()) listeners.add(check);
    });
  return {
    child,
    pid: child.pid!,
    stdout: () => output.stdout,
    stderr: () => output.stderr,
    waitFor,
    exited,
    port: async () => Number((await waitFor('stderr', /\[agentd\] session listening on 127\.0\.0\.1:(\d+)/))[1]),
  };
}

interface Session {
  request(request: object): Promise<SessionResponse>;
  sendRaw(text: string): void;
  /** Resolves with the error message (or 'closed') when the connection ends. */
  readonly closed: Promise<string>;
  close(): void;
}

function openSession(port: number, client: SessionCertificate = controlPlane, trusted = ca.certificatePem): Promise<Session> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', key: client.privateKeyPem, cert: client.certificatePem, ca: trusted, minVersion: 'TLSv1.3' });
    const pending = new Map<number, (response: SessionResponse) => void>();
    const unclaimed: SessionResponse[] = [];
    let buffered = '';
    const closed = new Promise<string>((resolveClosed) => {
      socket.on('error', (error) => {
        resolveClosed(error.message);
        reject(error);
      });
      socket.on('close', () => resolveClosed('closed'));
    });
    socket.on('data', (chunk) => {
      buffered += chunk;
      for (let newline = buffered.indexOf('\n'); newline !== -1; newline = buffered.indexOf('\n')) {
        const response = JSON.parse(buffered.slice(0, newline)) as SessionResponse;
        buffered = buffered.slice(newline + 1);
        const waiter = pending.get(response.id);
        if (waiter) {
          pending.delete(response.id);
          waiter(response);
        } else unclaimed.push(response);
      }
    });
    socket.on('secureConnect', () =>
      resolve({
        request: (request) =>
          new Promise((resolveResponse) => {
            pending.set((request as { id: number }).id, resolveResponse);
            socket.write(`${JSON.stringify(request)}\n`);
          }),
        sendRaw: (text) => socket.write(text),
        closed,
        close: () => socket.destroy(),
      }),
    );
  });
}

/** Uid, Gid, Groups, CapEff, … of a live process. */
function procStatus(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .filter((line) => line.includes(':'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
  );
}

/** Every process whose parent is `ppid`, with its state letter (Z = zombie). */
function childrenOf(ppid: number): { pid: number; state: string; comm: string }[] {
  const out: { pid: number; state: string; comm: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    const [state, parent] = stat.slice(close + 2).split(' ');
    if (Number(parent) === ppid) out.push({ pid: Number(entry), state: state!, comm: stat.slice(stat.indexOf('(') + 1, close) });
  }
  return out;
}

const hasScript = spawnSync('script', ['--version']).status === 0;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('agentd as a process', { concurrency: false }, () => {
  test('the native helper refuses root before forking', () => {
    const native = loadNativeProcessControl(join(nativeDir, 'agentd_proc.node'));
    assert.throws(
      () => native.spawn({ file: 'true', argv: ['true'], env: {}, cwd: '/', uid: 0, gid: 0, foreground: false }),
      /refusing to spawn as root/,
    );
  });

  test('with the firewall on it waits for start, then runs the command as 1001 with no privileges', async () => {
    const agentd = startAgentd(['sh', '-c', 'echo started; exec sleep 30'], { firewall: 'true' });
    const port = await agentd.port();
    await agentd.waitFor('stderr', /\[agentd\] waiting for the firewall to enroll this container\n/);
    await sleep(300);
    assert.equal(agentd.stdout(), '', 'the command must not run before start');
    const session = await openSession(port);
    assert.deepEqual(await session.request({ id: 1, op: 'status' }), { id: 1, ok: true, state: 'waiting', command: ['sh', '-c', 'echo started; exec sleep 30'] });
    const started = await session.request({ id: 2, op: 'start' });
    assert.equal(started.ok, true);
    assert.equal(started.state, 'running');
    const pid = started.pid!;
    await agentd.waitFor('stdout', /started\n/);
    const again = await session.request({ id: 3, op: 'start' });
    assert.equal(again.pid, pid, 'start is idempotent');

    const status = procStatus(pid);
    assert.deepEqual(status.Uid!.split(/\s+/), ['1001', '1001', '1001', '1001']);
    assert.deepEqual(status.Gid!.split(/\s+/), ['1001', '1001', '1001', '1001']);
    assert.equal(status.Groups, '');
    assert.equal(status.CapEff, '0000000000000000');
    assert.equal(status.CapPrm, '0000000000000000');
    assert.equal(status.NoNewPrivs, '1');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    assert.equal(pgrp, pid, 'the command leads its own process group');

    session.close();
    agentd.child.kill('SIGTERM');
    assert.deepEqual(await agentd.exited, { code: 143, signal: null });
  });

  test('with CLAWKER_FIREWALL_ENABLED unset it waits too (fail closed)', async () => {
    const agentd = startAgentd(['sh', '-c', 'echo started']);
    const port = await agentd.port();
    await agentd.waitFor('stderr', /waiting for the firewall/);
    const session = await openSession(port);
    assert.equal((await session.request({ id: 1, op: 'status' })).state, 'waiting');
    session.close();
    agentd.child.kill('SIGINT');
    assert.deepEqual(await agentd.exited, { code: 130, signal: null });
    assert.equal(agentd.stdout(), '');
  });

  test('SIGTERM before the command started ends agentd with 143', async () => {
    const agentd = startAgentd(['sh', '-c', 'echo started'], { firewall: 'true' });
    await agentd.waitFor('stderr', /waiting for the firewall/);
    agentd.child.kill('SIGTERM');
    assert.deepEqual(await agentd.exited, { code: 143, signal: null });
  });

  test('without session files the command never starts, and agentd says so loudly', async () => {
    const agentd = startAgentd(['sh', '-c', 'echo started'], { firewall: 'true', sessionDir: join(work, 'missing') });
    await agentd.waitFor('stderr', /NO SESSION: .*agentd-key\.pem does not exist/);
    await agentd.waitFor('stderr', /there is no session, so sh will not start/);
    await sleep(300);
    assert.equal(agentd.stdout(), '');
    agentd.child.kill('SIGTERM');
    assert.equal((await agentd.exited).code, 143);
  });

  test('a session key others could read is refused', async () => {
    const loose = join(work, 'loose-session');
    mkdirSync(loose, { mode: 0o700 });
    for (const name of ['ca.pem', 'agentd.pem', 'agentd-key.pem']) writeFileSync(join(loose, name), readFileSync(join(sessionDir, name)), { mode: 0o644 });
    chmodSync(join(loose, 'agentd-key.pem'), 0o644);
    const agentd = startAgentd(['true'], { firewall: 'true', sessionDir: loose });
    await agentd.waitFor('stderr', /NO SESSION: .*readable by others/);
    agentd.child.kill('SIGTERM');
    await agentd.exited;
  });

  test('with the firewall off it starts at once; the environment is the agent user’s', async () => {
    const agentd = startAgentd(['sh', '-c', 'echo "$HOME|$USER|$LOGNAME|${CLAWKER_AGENTD_PORT:-unset}|$CLAWKER_PROJECT"; pwd; exit 3'], {
      firewall: 'false',
      env: { CLAWKER_PROJECT: 'demo', HOME: '/root', USER: 'root' },
    });
    assert.deepEqual(await agentd.exited, { code: 3, signal: null });
    assert.equal(agentd.stdout(), `${AGENT_HOME}|claude|claude|unset|demo\n${work}\n`);
    assert.match(agentd.stderr(), /\[agentd\] sh exited with code 3/);
  });

  test('a command ended by a signal: agentd exits 128 + signal', async () => {
    const agentd = startAgentd(['sh', '-c', 'kill -USR2 $$; sleep 5'], { firewall: 'false' });
    assert.deepEqual(await agentd.exited, { code: 128 + 12, signal: null });
    assert.match(agentd.stderr(), /sh was ended by SIGUSR2 \(exit code 140\)/);
  });

  test('SIGTERM to agentd reaches the command, whose exit code agentd returns', async () => {
    const agentd = startAgentd(['sh', '-c', 'trap "exit 7" TERM; echo ready; while :; do sleep 0.05; done'], { firewall: 'false' });
    await agentd.waitFor('stdout', /ready/);
    agentd.child.kill('SIGTERM');
    assert.deepEqual(await agentd.exited, { code: 7, signal: null });
  });

  test('SIGUSR1 is forwarded to the command and does not open a debugger in root agentd', async () => {
    const agentd = startAgentd(['sh', '-c', 'trap "echo got-usr1; exit 0" USR1; echo ready; while :; do sleep 0.05; done'], { firewall: 'false' });
    await agentd.waitFor('stdout', /ready/);
    agentd.child.kill('SIGUSR1');
    await agentd.waitFor('stdout', /got-usr1/);
    assert.deepEqual(await agentd.exited, { code: 0, signal: null });
    assert.doesNotMatch(agentd.stderr(), /Debugger listening/);
  });

  test('with a terminal the command owns it: ^C reaches the command once, agentd is untouched', async () => {
    // script(1) gives the command a real terminal; Debian's essential bsdutils has it. Missing is a failure, not a skip.
    assert.ok(hasScript, 'script(1) is not installed (Debian: apt-get install bsdutils): this test needs it to give agentd a real terminal');
    // script(1) gives agentd a pseudo-terminal as its controlling terminal, as `docker run -it` does.
    const env = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      CLAWKER_AGENTD_NATIVE: join(nativeDir, 'agentd_proc.node'),
      CLAWKER_AGENTD_SESSION_DIR: join(work, 'missing'),
      CLAWKER_AGENTD_WORKDIR: work,
      CLAWKER_FIREWALL_ENABLED: 'false',
    };
    const inner = `'${process.execPath}' '${bundle}' -- sh -c 'trap "echo got-int; exit 5" INT; echo ready $(cut -d" " -f5,8 /proc/$$/stat); while :; do sleep 0.05; done'`;
    const child = spawn('script', ['-qec', inner, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    running.add(child);
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    for (let waited = 0; !/ready \d+ \d+/.test(output) && waited < 5000; waited += 50) await sleep(50);
    const [, group, foreground] = output.match(/ready (\d+) (\d+)/) ?? [];
    assert.ok(group && foreground === group, `the command's group is the terminal's foreground group: ${output}`);
    child.stdin!.write('\x03');
    assert.equal(await exited, 5);
    assert.equal(output.match(/got-int/g)?.length, 1, output);
  });

  test('a command that cannot be executed: a clear message and exit 127', async () => {
    const agentd = startAgentd(['no-such-command-clawker'], { firewall: 'false' });
    assert.deepEqual(await agentd.exited, { code: 127, signal: null });
    assert.match(agentd.stderr(), /\[agentd\] exec no-such-command-clawker: No such file or directory/);
  });

  test('a failed start is reported to the control plane before agentd exits', async () => {
    const agentd = startAgentd(['no-such-command-clawker'], { firewall: 'true' });
    const session = await openSession(await agentd.port());
    const response = await session.request({ id: 1, op: 'start' });
    assert.deepEqual(response, { id: 1, ok: false, error: 'exec no-such-command-clawker: No such file or directory' });
    assert.equal((await agentd.exited).code, 127);
  });

  test('orphans are reaped: no zombie children of agentd remain', async () => {
    const agentd = startAgentd(['sh', '-c', 'sh -c "sleep 1 &"; echo ready; sleep 5'], { firewall: 'false' });
    await agentd.waitFor('stdout', /ready/);
    const commandPid = Number((await agentd.waitFor('stderr', /started sh as pid (\d+)/))[1]);
    // The background sleep's parent exited: it now belongs to agentd. (Until the forked subshell has
    // exec'd, it still shows as `sh`: look again for a little while.)
    let adopted = childrenOf(agentd.pid).filter((child) => child.pid !== commandPid);
    for (let i = 0; i < 40 && !adopted.some((child) => child.comm === 'sleep'); i++) {
      await sleep(10);
      adopted = childrenOf(agentd.pid).filter((child) => child.pid !== commandPid);
    }
    assert.ok(adopted.some((child) => child.comm === 'sleep'), `expected the orphaned sleep under agentd, found ${JSON.stringify(adopted)}`);
    await sleep(1500);
    const zombies = childrenOf(agentd.pid).filter((child) => child.state === 'Z');
    assert.deepEqual(zombies, []);
    assert.ok(!childrenOf(agentd.pid).some((child) => child.comm === 'sleep' && child.pid !== commandPid), 'the orphan has exited and is gone');
    agentd.child.kill('SIGTERM');
    assert.equal((await agentd.exited).code, 143);
  });

  test('session: only the control plane certificate from the clawker CA gets an answer', async () => {
    const agentd = startAgentd(['sleep', '30'], { firewall: 'true' });
    const port = await agentd.port();

    const wrongCn = await openSession(port, issueSessionCertificate(ca, { commonName: 'clawker-agent', usage: 'client' }));
    void wrongCn.request({ id: 1, op: 'start' });
    assert.match(await wrongCn.closed, /closed|ECONNRESET|socket hang up/);

    const foreign = issueSessionCertificate(otherCa, { commonName: CONTROLPLANE_SESSION_CN, usage: 'client' });
    const foreignOutcome = await openSession(port, foreign).then(
      async (session) => {
        void session.request({ id: 1, op: 'start' });
        return session.closed;
      },
      (error: Error) => error.message,
    );
    assert.match(foreignOutcome, /closed|alert|certificate|ECONNRESET/);

    const serverPurpose = issueSessionCertificate(ca, { commonName: CONTROLPLANE_SESSION_CN, usage: 'server' });
    const wrongPurpose = await openSession(port, serverPurpose).then(
      async (session) => {
        void session.request({ id: 1, op: 'start' });
        return session.closed;
      },
      (error: Error) => error.message,
    );
    assert.match(wrongPurpose, /closed|alert|certificate|ECONNRESET/);

    await agentd.waitFor('stderr', /refused .*not the control plane's/);
    const session = await openSession(port);
    const status = await session.request({ id: 9, op: 'status' });
    assert.equal(status.ok, true);
    assert.equal(status.state, 'waiting', 'none of the refused peers started the command');
    session.close();
    agentd.child.kill('SIGTERM');
    await agentd.exited;
  });

  test('session: bad requests get errors; garbage and overlong lines close the connection', async () => {
    const agentd = startAgentd(['sleep', '30'], { firewall: 'true' });
    const port = await agentd.port();
    const session = await openSession(port);
    const invalid = await session.request({ id: 4, op: 'exec', argv: [] });
    assert.equal(invalid.ok, false);
    assert.match(invalid.error!, /invalid request/);
    session.sendRaw('this is not json\n');
    assert.equal(await session.closed, 'closed');

    const flood = await openSession(port);
    flood.sendRaw('x'.repeat(SESSION_MAX_LINE + 10));
    assert.equal(await flood.closed, 'closed');
    agentd.child.kill('SIGTERM');
    await agentd.exited;
  });

  test('exec runs as the agent user and returns its exit code and output', async () => {
    const agentd = startAgentd(['sleep', '30'], { firewall: 'true' });
    const session = await openSession(await agentd.port());
    const id = await session.request({ id: 1, op: 'exec', argv: ['sh', '-c', 'id -u; id -G; echo "$GREETING"; pwd; echo oops >&2; exit 4'], env: { GREETING: 'hi' }, cwd: '/' });
    assert.deepEqual(id, { id: 1, ok: true, exitCode: 4, output: `${AGENT_UID}\n${AGENT_UID}\nhi\n/\noops\n` });

    const long = await session.request({ id: 2, op: 'exec', argv: ['sh', '-c', 'i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done'] });
    assert.equal(long.ok, true);
    assert.equal(Buffer.byteLength(long.output!), 8 * 1024);
    assert.ok(long.output!.endsWith('line 2999\n'));

    const missing = await session.request({ id: 3, op: 'exec', argv: ['no-such-command-clawker'] });
    assert.deepEqual(missing, { id: 3, ok: false, error: 'exec no-such-command-clawker: No such file or directory' });

    const badCwd = await session.request({ id: 4, op: 'exec', argv: ['true'], cwd: '/no/such/dir' });
    assert.deepEqual(badCwd, { id: 4, ok: false, error: 'chdir /no/such/dir: No such file or directory' });

    const rootOnly = join(work, 'root-only');
    mkdirSync(rootOnly, { mode: 0o700 });
    const denied = await session.request({ id: 7, op: 'exec', argv: ['true'], cwd: rootOnly });
    assert.deepEqual(denied, { id: 7, ok: false, error: `chdir ${rootOnly}: Permission denied` }, 'chdir happens as the agent user, not as root');

    const started = Date.now();
    const slow = await session.request({ id: 5, op: 'exec', argv: ['sh', '-c', 'echo before; sleep 20 & sleep 20'], timeoutMs: 300 });
    assert.equal(slow.ok, false);
    assert.match(slow.error!, /timed out after 300 ms/);
    assert.equal(slow.signal, 'SIGKILL');
    assert.equal(slow.output, 'before\n');
    assert.ok(Date.now() - started < 3000, 'the whole group was killed, the reply did not wait for the background sleep');

    const status = await session.request({ id: 6, op: 'status' });
    assert.equal(status.state, 'waiting', 'exec does not start the command');
    assert.deepEqual(childrenOf(agentd.pid).filter((child) => child.state === 'Z'), []);
    session.close();
    agentd.child.kill('SIGTERM');
    assert.equal((await agentd.exited).code, 143);
  });
});
