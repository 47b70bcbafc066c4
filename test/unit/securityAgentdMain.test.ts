/**
 * agentd's life as PID 1 in process (src/agentd/agentd.ts), over fakes of the process, the native
 * helper, the session server and the timers: the command never starts before the session's `start`
 * (firewall on) and never without a session; exit codes 2 (usage), 70 (no native helper, internal
 * error), 127 (not found), 126 (cannot execute), 128 + signal, the command's own; signals forwarded
 * to the command's process group; finish() once.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isatty } from 'node:tty';
import { after, describe, test } from 'node:test';
import {
  type AgentdDeps, agentdArguments, type AgentdProcess, describeExit, fdLog, isDirectory, nodeAgentdDeps, runAgentd,
} from '../../src/agentd/agentd';
import type { ExecStepContext, ExecStepRequest, ExecStepResult } from '../../src/agentd/execStep';
import { readSessionMaterial } from '../../src/agentd/session';
import { runExecStep } from '../../src/agentd/execStep';
import { startSessionServer } from '../../src/agentd/session';
import type { SpawnRequest } from '../../src/agentd/nativeProc';
import type { SessionMaterial, SessionServerOptions } from '../../src/agentd/session';
import { FakeProcessTable } from '../helpers/fakeProcessTable';

const made: string[] = [];
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

class FakeProcess extends EventEmitter implements AgentdProcess {
  readonly exits: number[] = [];
  constructor(readonly pid = 77) {
    super();
  }
  exit(code: number): void {
    this.exits.push(code);
  }
}

const MATERIAL: SessionMaterial = { ca: 'CA', certificate: 'CERT', key: 'KEY' } as unknown as SessionMaterial;

interface Harness {
  readonly deps: AgentdDeps;
  readonly proc: FakeProcess;
  readonly native: FakeProcessTable;
  readonly logs: string[];
  readonly sessions: { material: SessionMaterial; options: SessionServerOptions }[];
  readonly closes: number[];
  readonly timeouts: { callback: () => void; ms: number }[];
  readonly intervals: { callback: () => void; ms: number }[];
  readonly execs: { context: ExecStepContext; request: ExecStepRequest; resolve: (result: ExecStepResult) => void }[];
  readonly filesAsked: unknown[];
  /** The session handlers agentd gave the server. */
  handlers(): SessionServerOptions['handlers'];
}

function harness(
  options: {
    pid?: number;
    native?: FakeProcessTable | (() => never);
    session?: 'ok' | 'missing' | 'listen-fails';
    terminal?: boolean;
    directories?: string[];
  } = {},
): Harness {
  const proc = new FakeProcess(options.pid);
  const native = options.native instanceof FakeProcessTable || options.native === undefined ? (options.native ?? new FakeProcessTable()) : new FakeProcessTable();
  const logs: string[] = [];
  const sessions: Harness['sessions'] = [];
  const closes: number[] = [];
  const timeouts: Harness['timeouts'] = [];
  const intervals: Harness['intervals'] = [];
  const execs: Harness['execs'] = [];
  const filesAsked: unknown[] = [];
  const session = options.session ?? 'ok';
  const deps: AgentdDeps = {
    process: proc,
    log: (message) => logs.push(message),
    loadNative: typeof options.native === 'function' ? options.native : () => native,
    isDirectory: (path) => (options.directories ?? ['/workspace']).includes(path),
    stdinIsTerminal: () => options.terminal ?? false,
    readSessionMaterial: (files) => {
      filesAsked.push(files);
      return session === 'missing' ? { problem: 'cannot read /s/ca.pem' } : { material: MATERIAL };
    },
    startSessionServer: async (material, serverOptions) => {
      sessions.push({ material, options: serverOptions });
      if (session === 'listen-fails') throw new Error('listen EADDRINUSE');
      return {
        address: { address: serverOptions.host, port: 4000, family: 'IPv4' },
        close: async () => {
          closes.push(1);
        },
      };
    },
    runExecStep: (context, request) => new Promise((resolve) => execs.push({ context, request, resolve })),
    setTimeout: (callback, ms) => timeouts.push({ callback, ms }),
    setInterval: (callback, ms) => intervals.push({ callback, ms }),
  };
  return {
    deps,
    proc,
    native,
    logs,
    sessions,
    closes,
    timeouts,
    intervals,
    execs,
    filesAsked,
    handlers: () => {
      assert.equal(sessions.length, 1, 'one session server');
      return sessions[0]!.options.handlers;
    },
  };
}

const FIREWALL_ON = { CLAWKER_AGENTD_HOST: '127.0.0.9', CLAWKER_AGENTD_PORT: '4000', CLAWKER_AGENTD_SESSION_DIR: '/s', PATH: '/bin' };
const FIREWALL_OFF = { ...FIREWALL_ON, CLAWKER_FIREWALL_ENABLED: 'false' };
/** Lets finish() run past its awaits. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('agentd: usage and start-up failures', () => {
  test('no command: the usage, exit 2, nothing loaded or listened', async () => {
    for (const args of [[], ['--'], ['--', '']]) {
      let loaded = 0;
      const h = harness({ native: () => (loaded++, assert.fail('loaded')) });
      await runAgentd(args, FIREWALL_ON, h.deps);
      assert.deepEqual(h.proc.exits, [2], JSON.stringify(args));
      assert.deepEqual(h.logs, ['no command given: usage: agentd.js -- <command> [args...]']);
      assert.equal(loaded, 0);
      assert.deepEqual(h.sessions, []);
      assert.deepEqual(h.proc.eventNames(), []);
    }
  });

  test('a bad session port: exit 2', async () => {
    const h = harness();
    await runAgentd(['--', 'claude'], { CLAWKER_AGENTD_PORT: '70000' }, h.deps);
    assert.deepEqual(h.proc.exits, [2]);
    assert.deepEqual(h.logs, ['CLAWKER_AGENTD_PORT must be a port number (0-65535)']);
    assert.deepEqual(h.sessions, []);
  });

  test('the native helper cannot be loaded: exit 70, no handlers, no session, nothing started', async () => {
    const h = harness({
      native: () => {
        throw new Error('agentd_proc.node: cannot open shared object file');
      },
    });
    await runAgentd(['--', 'claude'], FIREWALL_OFF, h.deps);
    assert.deepEqual(h.proc.exits, [70]);
    assert.deepEqual(h.logs, ['cannot load the native helper, so nothing can be started: agentd_proc.node: cannot open shared object file']);
    assert.deepEqual(h.sessions, []);
    assert.deepEqual(h.filesAsked, []);
    assert.deepEqual(h.proc.eventNames(), []);
    assert.deepEqual(h.intervals, []);
  });

  test('not PID 1: becomes a subreaper (a failure is said, not fatal); PID 1: does not', async () => {
    const a = harness({ pid: 77 });
    await runAgentd(['--', 'claude'], FIREWALL_ON, a.deps);
    assert.equal(a.native.subreaper, 1);
    const b = harness({ pid: 1 });
    await runAgentd(['--', 'claude'], FIREWALL_ON, b.deps);
    assert.equal(b.native.subreaper, 0);
    const native = new FakeProcessTable();
    native.subreaperFails = true;
    const c = harness({ native });
    await runAgentd(['--', 'claude'], FIREWALL_ON, c.deps);
    assert.equal(c.logs[0], 'cannot become a subreaper: prctl says no');
    assert.deepEqual(c.proc.exits, []);
    assert.equal(c.sessions.length, 1, 'goes on to serve the session');
  });

  test('an internal error while setting up: exit 70 with the stack, or the message without one', async () => {
    const h = harness();
    const error = new Error('disk on fire');
    const deps = {
      ...h.deps,
      readSessionMaterial: () => {
        throw error;
      },
    };
    await runAgentd(['--', 'claude'], FIREWALL_ON, deps);
    assert.deepEqual(h.proc.exits, [70]);
    assert.equal(h.logs.at(-1), `internal error: ${error.stack}`);
    assert.match(h.logs.at(-1)!, /^internal error: Error: disk on fire\n\s+at /);
    const bare = new Error('no stack here');
    bare.stack = undefined;
    const g = harness();
    await runAgentd(['--', 'claude'], FIREWALL_ON, { ...g.deps, readSessionMaterial: () => { throw bare; } });
    assert.deepEqual(g.proc.exits, [70]);
    assert.equal(g.logs.at(-1), 'internal error: no stack here');
  });
});

describe('agentd: the start gate', () => {
  test('firewall on: the session is served, the command waits for its start', async () => {
    const h = harness({ terminal: true });
    await runAgentd(['--', 'claude', '--resume'], FIREWALL_ON, h.deps);
    assert.deepEqual(h.filesAsked, [{ ca: '/s/ca.pem', certificate: '/s/agentd.pem', key: '/s/agentd-key.pem' }]);
    assert.equal(h.sessions.length, 1);
    assert.equal(h.sessions[0]!.material, MATERIAL);
    assert.equal(h.sessions[0]!.options.host, '127.0.0.9');
    assert.equal(h.sessions[0]!.options.port, 4000);
    assert.equal(h.sessions[0]!.options.log, h.deps.log);
    assert.deepEqual(h.logs, ['session listening on 127.0.0.9:4000', 'waiting for the firewall to enroll this container']);
    assert.deepEqual(h.native.spawned, [], 'not started before the session says start');
    assert.deepEqual(h.proc.exits, []);
    const handlers = h.handlers();
    assert.deepEqual(handlers.status(), { state: 'waiting', command: ['claude', '--resume'] });
    assert.deepEqual(h.native.spawned, []);

    assert.deepEqual(handlers.start(), { state: 'running', command: ['claude', '--resume'], pid: 100 });
    assert.equal(h.native.spawned.length, 1);
    const spawned = h.native.spawned[0] as SpawnRequest;
    assert.equal(spawned.file, 'claude');
    assert.deepEqual(spawned.argv, ['claude', '--resume']);
    assert.equal(spawned.uid, 1001);
    assert.equal(spawned.gid, 1001);
    assert.equal(spawned.cwd, '/workspace');
    assert.equal(spawned.foreground, true);
    assert.deepEqual(spawned.env, { PATH: '/bin', HOME: '/home/claude', USER: 'claude', LOGNAME: 'claude' });
    assert.equal(h.logs.at(-1), 'started claude as pid 100 (uid 1001)');
    // Idempotent: a second start starts nothing.
    assert.deepEqual(handlers.start(), { state: 'running', command: ['claude', '--resume'], pid: 100 });
    assert.equal(h.native.spawned.length, 1);
    assert.deepEqual(handlers.status(), { state: 'running', command: ['claude', '--resume'], pid: 100 });
  });

  test('the workdir from the environment, else the agent home; no terminal, no foreground', async () => {
    const h = harness({ directories: ['/work/x'] });
    await runAgentd(['--', 'claude'], { ...FIREWALL_OFF, CLAWKER_AGENTD_WORKDIR: '/work/x' }, h.deps);
    assert.equal(h.native.spawned[0]!.cwd, '/work/x');
    assert.equal(h.native.spawned[0]!.foreground, false);
    const g = harness({ directories: [] });
    await runAgentd(['--', 'claude'], FIREWALL_OFF, g.deps);
    assert.equal(g.native.spawned[0]!.cwd, '/home/claude');
  });

  test('firewall on without session files: the command never starts, said loudly', async () => {
    const h = harness({ session: 'missing' });
    await runAgentd(['--', 'claude'], FIREWALL_ON, h.deps);
    assert.deepEqual(h.sessions, []);
    assert.deepEqual(h.logs, [
      'NO SESSION: cannot read /s/ca.pem. The control plane cannot reach this container.',
      'the firewall is enabled but there is no session, so claude will not start. Recreate the container.',
    ]);
    assert.deepEqual(h.native.spawned, []);
    assert.deepEqual(h.proc.exits, []);
    // It waits to be stopped: SIGTERM ends it with 143.
    h.proc.emit('SIGTERM');
    await settle();
    assert.deepEqual(h.proc.exits, [143]);
    assert.deepEqual(h.native.spawned, []);
  });

  test('firewall on, the session cannot listen: the command never starts', async () => {
    const h = harness({ session: 'listen-fails' });
    await runAgentd(['--', 'claude'], { ...FIREWALL_ON, CLAWKER_FIREWALL_ENABLED: 'yes' }, h.deps);
    assert.deepEqual(h.logs, [
      'NO SESSION: cannot listen on 127.0.0.9:4000: listen EADDRINUSE. The control plane cannot reach this container.',
      'the firewall is enabled but there is no session, so claude will not start. Recreate the container.',
    ]);
    assert.deepEqual(h.native.spawned, []);
    assert.deepEqual(h.proc.exits, []);
  });

  test('firewall off: the command starts at once, with a session or without', async () => {
    const h = harness();
    await runAgentd(['--', 'claude'], FIREWALL_OFF, h.deps);
    assert.equal(h.native.spawned.length, 1);
    assert.deepEqual(h.logs, ['session listening on 127.0.0.9:4000', 'started claude as pid 100 (uid 1001)']);
    const g = harness({ session: 'missing' });
    await runAgentd(['--', 'claude'], FIREWALL_OFF, g.deps);
    assert.equal(g.native.spawned.length, 1);
    assert.deepEqual(g.logs, ['NO SESSION: cannot read /s/ca.pem. The control plane cannot reach this container.', 'started claude as pid 100 (uid 1001)']);
  });
});

describe('agentd: a command that cannot start', () => {
  const spawnError = (code: string, message: string) => Object.assign(new Error(message), { code });

  test('not found: 127; cannot execute: 126; the error goes to the session, agentd exits after a grace', async () => {
    for (const [code, exit] of [['ENOENT', 127], ['EACCES', 126], ['ENOEXEC', 126]] as const) {
      const native = new FakeProcessTable();
      native.failWith = spawnError(code, `exec claude: ${code}`);
      const h = harness({ native });
      await runAgentd(['--', 'claude'], FIREWALL_ON, h.deps);
      const handlers = h.handlers();
      assert.throws(() => handlers.start(), { message: `exec claude: ${code}` });
      assert.equal(h.logs.at(-1), `exec claude: ${code}`);
      assert.deepEqual(handlers.status(), { state: 'exited', command: ['claude'] });
      assert.deepEqual(h.proc.exits, [], 'not before the grace');
      // Within the grace: a second start reports the failure and starts nothing; exec steps are refused.
      const logged = h.logs.length;
      assert.deepEqual(handlers.start(), { state: 'exited', command: ['claude'] });
      assert.equal(h.logs.length, logged, 'no "started" line for a command that did not start');
      assert.deepEqual(await handlers.exec({ argv: ['true'] } as never), { ok: false, error: 'claude has exited; agentd is shutting down' });
      assert.equal(h.execs.length, 0);
      assert.equal(h.timeouts.length, 1);
      assert.equal(h.timeouts[0]!.ms, 200);
      h.timeouts[0]!.callback();
      await settle();
      assert.deepEqual(h.proc.exits, [exit], code);
      assert.deepEqual(h.closes, [1], 'the session closed on the way out');
      // A start after that is refused.
      assert.throws(() => handlers.start(), { message: 'agentd is shutting down' });
    }
  });

  test('firewall off: the failed start is swallowed, and agentd exits 127 after the grace', async () => {
    const native = new FakeProcessTable();
    native.failWith = spawnError('ENOENT', 'exec nope: No such file or directory');
    const h = harness({ native });
    await runAgentd(['--', 'nope'], FIREWALL_OFF, h.deps);
    assert.deepEqual(h.logs, ['session listening on 127.0.0.9:4000', 'exec nope: No such file or directory']);
    assert.equal(h.timeouts.length, 1);
    h.timeouts[0]!.callback();
    await settle();
    assert.deepEqual(h.proc.exits, [127]);
  });
});

describe('agentd: signals, reaping, exit', () => {
  test('every forwarded signal has a handler before anything starts; SIGCHLD and a 2 s poll reap', async () => {
    const h = harness();
    await runAgentd(['--', 'claude'], FIREWALL_ON, h.deps);
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCHLD', 'uncaughtException']) {
      assert.equal(h.proc.listenerCount(signal), 1, signal);
    }
    assert.equal(h.intervals.length, 1);
    assert.equal(h.intervals[0]!.ms, 2000);
    h.handlers().start();
    // The poll reaps the command's exit.
    h.native.exited.push({ pid: 100, exitCode: 3, signal: null });
    h.intervals[0]!.callback();
    await settle();
    assert.deepEqual(h.proc.exits, [3]);
    assert.equal(h.logs.at(-1), 'claude exited with code 3');
  });

  test('the command ended by a signal: 128 + signal; its group killed on the way out, the session closed', async () => {
    const h = harness();
    await runAgentd(['--', 'claude'], FIREWALL_OFF, h.deps);
    h.native.exited.push({ pid: 100, exitCode: null, signal: 9 });
    h.proc.emit('SIGCHLD');
    await settle();
    assert.deepEqual(h.proc.exits, [137]);
    assert.equal(h.logs.at(-1), 'claude was ended by SIGKILL (exit code 137)');
    assert.deepEqual(h.native.killed, [[-100, 9]]);
    assert.deepEqual(h.closes, [1]);
  });

  test('running: signals go to the command group; waiting: TERM/INT/HUP/QUIT end agentd with 128 + signal, others ignored', async () => {
    const h = harness();
    await runAgentd(['--', 'claude'], FIREWALL_OFF, h.deps);
    h.proc.emit('SIGTERM');
    h.proc.emit('SIGWINCH');
    h.proc.emit('SIGUSR1');
    assert.deepEqual(h.native.killed, [[-100, 15], [-100, 28], [-100, 10]]);
    assert.deepEqual(h.proc.exits, []);

    for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129], ['SIGQUIT', 131]] as const) {
      const w = harness();
      await runAgentd(['--', 'claude'], FIREWALL_ON, w.deps);
      w.proc.emit('SIGUSR2');
      w.proc.emit('SIGWINCH');
      assert.deepEqual(w.proc.exits, []);
      w.proc.emit(signal);
      await settle();
      assert.deepEqual(w.proc.exits, [code], signal);
      assert.equal(w.logs.at(-1), `received ${signal} before claude started; exiting`);
      assert.deepEqual(w.native.spawned, []);
    }
  });

  test('a signal that cannot be forwarded is said, and agentd stays', async () => {
    const native = new FakeProcessTable();
    const h = harness({ native });
    await runAgentd(['--', 'claude'], FIREWALL_OFF, h.deps);
    native.killFails = Object.assign(new Error('kill EPERM'), { code: 'EPERM' });
    h.proc.emit('SIGTERM');
    await settle();
    assert.equal(h.logs.at(-1), 'cannot forward SIGTERM to claude: kill EPERM');
    assert.deepEqual(h.proc.exits, []);
  });

  test('finish is once: a second signal, the command exit after it, a late failed-start timer change nothing', async () => {
    const h = harness();
    await runAgentd(['--', 'claude'], FIREWALL_ON, h.deps);
    h.proc.emit('SIGTERM');
    h.proc.emit('SIGINT');
    await settle();
    assert.deepEqual(h.proc.exits, [143]);
    assert.deepEqual(h.closes, [1]);
    assert.throws(() => h.handlers().start(), { message: 'agentd is shutting down' });
    assert.deepEqual(h.native.spawned, []);
    h.proc.emit('SIGQUIT');
    await settle();
    assert.deepEqual(h.proc.exits, [143]);
    assert.deepEqual(h.closes, [1]);
  });

  test('an uncaught exception: said with its stack, everything killed, exit 70', async () => {
    const h = harness();
    await runAgentd(['--', 'claude'], FIREWALL_OFF, h.deps);
    const error = new Error('boom');
    h.proc.emit('uncaughtException', error);
    assert.equal(h.logs.at(-1), `internal error: ${error.stack}`);
    assert.deepEqual(h.native.killed, [[-100, 9]]);
    assert.deepEqual(h.proc.exits, [70]);
    const bare = new Error('bare');
    bare.stack = undefined;
    h.proc.emit('uncaughtException', bare);
    assert.equal(h.logs.at(-1), 'internal error: bare');
  });
});

describe('agentd: exec steps', () => {
  const request = (id: number): ExecStepRequest => ({ id, op: 'exec', argv: ['true'] }) as unknown as ExecStepRequest;

  test('run with the supervisor, the helper’s pipe and the command environment; at most 4 at once', async () => {
    const h = harness();
    await runAgentd(['--', 'claude'], FIREWALL_OFF, h.deps);
    const handlers = h.handlers();
    const pending = [1, 2, 3, 4].map((id) => handlers.exec(request(id) as never));
    await settle();
    assert.equal(h.execs.length, 4);
    assert.deepEqual(await handlers.exec(request(5) as never), { ok: false, error: 'too many exec steps at once (at most 4)' });
    const { context } = h.execs[0]!;
    assert.deepEqual(context.baseEnv, { PATH: '/bin', CLAWKER_FIREWALL_ENABLED: 'false', HOME: '/home/claude', USER: 'claude', LOGNAME: 'claude' });
    assert.deepEqual(context.pipe(), [3, 4]);
    assert.equal(h.native.pipes, 1);
    assert.deepEqual(context.supervisor.status(), handlers.status());
    assert.deepEqual(h.execs.map((exec) => exec.request), [1, 2, 3, 4].map(request));
    h.execs[0]!.resolve({ ok: true, exitCode: 0, output: 'done' } as ExecStepResult);
    assert.deepEqual(await pending[0], { ok: true, exitCode: 0, output: 'done' });
    // One finished: room for one more, not two.
    const sixth = handlers.exec(request(6) as never);
    await settle();
    assert.equal(h.execs.length, 5);
    assert.deepEqual(await handlers.exec(request(7) as never), { ok: false, error: 'too many exec steps at once (at most 4)' });
    for (const exec of h.execs.slice(1)) exec.resolve({ ok: true, exitCode: 1, output: '' } as ExecStepResult);
    await Promise.all([...pending.slice(1), sixth]);
  });

  test('a failing step frees its slot too', async () => {
    const h = harness();
    await runAgentd(['--', 'claude'], FIREWALL_OFF, {
      ...h.deps,
      runExecStep: async () => {
        throw new Error('step broke');
      },
    });
    const handlers = h.handlers();
    for (let i = 0; i < 6; i++) await assert.rejects(handlers.exec(request(i) as never), { message: 'step broke' });
  });

  test('after the command exited, or while agentd finishes: refused', async () => {
    const h = harness();
    await runAgentd(['--', 'claude'], FIREWALL_OFF, h.deps);
    const handlers = h.handlers();
    h.native.exited.push({ pid: 100, exitCode: 0, signal: null });
    h.proc.emit('SIGCHLD');
    assert.deepEqual(await handlers.exec(request(1) as never), { ok: false, error: 'claude has exited; agentd is shutting down' });
    const w = harness();
    await runAgentd(['--', 'claude'], FIREWALL_ON, w.deps);
    w.proc.emit('SIGTERM');
    assert.deepEqual(await w.handlers().exec(request(1) as never), { ok: false, error: 'claude has exited; agentd is shutting down' });
    assert.equal(w.execs.length, 0);
  });
});

describe('agentd: the real dependencies', () => {
  test('process, helper from CLAWKER_AGENTD_NATIVE, terminal, session, exec and timers', () => {
    const deps = nodeAgentdDeps();
    assert.equal(deps.process, process);
    assert.equal(deps.isDirectory, isDirectory);
    assert.equal(deps.readSessionMaterial, readSessionMaterial);
    assert.equal(deps.startSessionServer, startSessionServer);
    assert.equal(deps.runExecStep, runExecStep);
    assert.equal(deps.setTimeout, setTimeout);
    assert.equal(deps.setInterval, setInterval);
    assert.equal(deps.stdinIsTerminal(), isatty(0));
    const saved = process.env.CLAWKER_AGENTD_NATIVE;
    process.env.CLAWKER_AGENTD_NATIVE = '/nonexistent/agentd_proc.node';
    try {
      assert.throws(() => deps.loadNative(), /\/nonexistent\/agentd_proc\.node/);
    } finally {
      if (saved === undefined) delete process.env.CLAWKER_AGENTD_NATIVE;
      else process.env.CLAWKER_AGENTD_NATIVE = saved;
    }
  });

  test('isDirectory: a directory yes; a file, nothing or a path through a file no', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawker-agentd-main-'));
    made.push(dir);
    writeFileSync(join(dir, 'f'), '');
    assert.equal(isDirectory(dir), true);
    assert.equal(isDirectory(join(dir, 'f')), false);
    assert.equal(isDirectory(join(dir, 'missing')), false);
    assert.equal(isDirectory(join(dir, 'f', 'below')), false);
  });

  test('fdLog writes [agentd] lines and never throws', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawker-agentd-log-'));
    made.push(dir);
    const path = join(dir, 'log');
    const fd = openSync(path, 'w');
    fdLog(fd)('one');
    fdLog(fd)('two');
    closeSync(fd);
    assert.equal(readFileSync(path, 'utf8'), '[agentd] one\n[agentd] two\n');
    assert.doesNotThrow(() => fdLog(fd)('to a closed descriptor'));
  });

  test("agentd's arguments are those after node's and the script's path", () => {
    assert.deepEqual(agentdArguments(['/usr/bin/node', '/opt/clawker/agentd.js', '--', 'claude']), ['--', 'claude']);
    assert.deepEqual(agentdArguments(['/usr/bin/node', '/opt/clawker/agentd.js', 'claude']), ['claude']);
  });

  test('describeExit', () => {
    assert.equal(describeExit('claude', { exitCode: 0, signal: null }), 'claude exited with code 0');
    assert.equal(describeExit('sh', { exitCode: null, signal: 15 }), 'sh was ended by SIGTERM (exit code 143)');
  });
});
