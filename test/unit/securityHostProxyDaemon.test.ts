/**
 * The host proxy daemon in process (src/hostproxy/daemon.ts, daemonConfig.ts): its config from argv
 * and the environment, the secret refused when others can read it, the pid file (content, 0600) and
 * its removal on SIGTERM/SIGINT only while it still holds our pid, exit codes 2 (config) and 1
 * (anything else). The process, Docker, git and the opener are fakes; the files and the socket are real.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HOST_PROXY_TOKEN_HEADER } from '../../src/core/agents/agentContract';
import { daemonArguments, daemonLog, type DaemonProcess, type HostProxyDaemonDeps, nodeHostProxyDeps, runHostProxy, startHostProxy } from '../../src/hostproxy/daemon';
import { type HostProxyConfig, readConfig } from '../../src/hostproxy/daemonConfig';
import { readHostProxySecret } from '../../src/hostproxy/secret';
import { hostProxyToken } from '../../src/hostproxy/token';

const made: string[] = [];
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const SECRET = Buffer.alloc(32, 9);
/** The idle watch off: the tests that are not about it run no timer of it. */
const NO_IDLE = { idleGraceMs: 60_000, idlePollMs: 0 } as const;
const IDLE_DEFAULTS = { idleGraceMs: 60_000, idlePollMs: 30_000 } as const;

/** A data directory with a 0600 secret (or another mode) under hostproxy/. */
function dataDir(secretMode = 0o600): string {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-hostproxy-daemon-'));
  made.push(dir);
  mkdirSync(join(dir, 'hostproxy'), { mode: 0o700 });
  writeFileSync(join(dir, 'hostproxy', 'secret'), SECRET, { mode: secretMode });
  return dir;
}

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

class FakeProcess extends EventEmitter implements DaemonProcess {
  readonly exits: number[] = [];
  constructor(readonly pid = 4242) {
    super();
  }
  exit(code: number): void {
    this.exits.push(code);
    this.emit('exited', code);
  }
  /** Resolves with the next exit code. */
  nextExit(): Promise<number> {
    return new Promise((resolve) => this.once('exited', resolve));
  }
}

interface Fakes {
  readonly deps: HostProxyDaemonDeps;
  readonly proc: FakeProcess;
  /** Lines per openLog call, keyed by the path it was opened with ('' for none). */
  readonly logs: Map<string, string[]>;
  readonly written: string[];
  readonly sockets: (string | undefined)[];
  readonly listed: unknown[];
  readonly opened: string[];
  readonly timers: { ms: number; callback: () => void; unrefs: number }[];
}

function fakes(overrides: Partial<HostProxyDaemonDeps> = {}, containers: unknown[] = []): Fakes {
  const proc = new FakeProcess();
  const logs = new Map<string, string[]>();
  const written: string[] = [];
  const sockets: (string | undefined)[] = [];
  const listed: unknown[] = [];
  const opened: string[] = [];
  const timers: Fakes['timers'] = [];
  const deps: HostProxyDaemonDeps = {
    process: proc,
    openLog: (logPath) => {
      const lines: string[] = [];
      logs.set(logPath ?? '', lines);
      return (message) => lines.push(message);
    },
    write: (text) => written.push(text),
    readSecret: readHostProxySecret,
    docker: (socketPath) => {
      sockets.push(socketPath);
      return {
        listContainers: (async (options: unknown) => {
          listed.push(options);
          return containers;
        }) as never,
      };
    },
    git: async () => ({ kind: 'none' }),
    openUrl: async (url) => {
      opened.push(url);
    },
    setTimeout: (callback, ms) => {
      const timer = { ms, callback, unrefs: 0 };
      timers.push(timer);
      return { unref: () => (timer.unrefs += 1) };
    },
    now: Date.now,
    ...overrides,
  };
  return { deps, proc, logs, written, sockets, listed, opened, timers };
}

function call(port: number, method: string, path: string, options: { token?: string; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers[HOST_PROXY_TOKEN_HEADER] = options.token;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const agentContainer = (name: string, address: string, stack = 'clawker', network = 'clawker-net') => ({
  Id: `id-${name}`,
  Names: [`/${name}`],
  State: 'running',
  Labels: { 'dev.clawker.managed': 'true', 'dev.clawker.component': 'agent', 'dev.clawker.stack': stack },
  NetworkSettings: { Networks: { [network]: { IPAddress: address } } },
});

// ---- config ---------------------------------------------------------------------------------------

describe('host proxy config', () => {
  test('every option from argv', () => {
    const config = readConfig(
      ['--data-dir', '/d', '--listen', '172.30.0.1', '--port', '1234', '--stack-prefix', 'test-a', '--docker-host', 'unix:///run/d.sock'],
      {},
    );
    assert.deepEqual(config, { dataDir: '/d', listenAddress: '172.30.0.1', port: 1234, stackPrefix: 'test-a', dockerHost: 'unix:///run/d.sock', ...IDLE_DEFAULTS } satisfies HostProxyConfig);
  });

  test('every option from the environment', () => {
    const config = readConfig([], {
      CLAWKER_HOSTPROXY_DATA_DIR: '/e',
      CLAWKER_HOSTPROXY_LISTEN: 'fd00::1',
      CLAWKER_HOSTPROXY_PORT: '2345',
      CLAWKER_HOSTPROXY_STACK_PREFIX: 'envstack',
      DOCKER_HOST: 'tcp://10.0.0.5:2376',
    });
    assert.deepEqual(config, { dataDir: '/e', listenAddress: 'fd00::1', port: 2345, stackPrefix: 'envstack', dockerHost: 'tcp://10.0.0.5:2376', ...IDLE_DEFAULTS });
  });

  test('argv wins over the environment', () => {
    const config = readConfig(
      ['--data-dir', '/a', '--listen', '10.0.0.1', '--port', '3456', '--stack-prefix', 'argstack', '--docker-host', 'ssh://me@builder'],
      {
        CLAWKER_HOSTPROXY_DATA_DIR: '/e',
        CLAWKER_HOSTPROXY_LISTEN: '10.9.9.9',
        CLAWKER_HOSTPROXY_PORT: '2345',
        CLAWKER_HOSTPROXY_STACK_PREFIX: 'envstack',
        DOCKER_HOST: 'tcp://10.0.0.5:2376',
      },
    );
    assert.deepEqual(config, { dataDir: '/a', listenAddress: '10.0.0.1', port: 3456, stackPrefix: 'argstack', dockerHost: 'ssh://me@builder', ...IDLE_DEFAULTS });
  });

  test('defaults: port 18374, stack clawker, the platform default engine; an empty address is none', () => {
    assert.deepEqual(readConfig(['--data-dir', '/d', '--listen', '127.0.0.1'], {}), {
      dataDir: '/d',
      listenAddress: '127.0.0.1',
      port: 18374,
      stackPrefix: 'clawker',
      dockerHost: undefined,
      idleGraceMs: 60_000,
      idlePollMs: 30_000,
    });
    assert.equal(readConfig(['--data-dir', '/d', '--listen', '127.0.0.1'], { DOCKER_HOST: '' }).dockerHost, undefined);
    assert.equal(readConfig(['--data-dir', '/d', '--listen', '127.0.0.1', '--docker-host='], {}).dockerHost, undefined);
  });

  test('an engine address that is not one is refused at start, naming the option', () => {
    assert.throws(() => readConfig(['--data-dir', '/d', '--listen', '127.0.0.1', '--docker-host', '/var/run/docker.sock'], {}), /--docker-host: '\/var\/run\/docker\.sock' has no scheme: write unix:\/\/\/var\/run\/docker\.sock/);
    assert.throws(() => readConfig(['--data-dir', '/d', '--listen', '127.0.0.1'], { DOCKER_HOST: 'http://x' }), /--docker-host: 'http:\/\/x': unsupported scheme http:\/\//);
  });

  test('port boundaries and spellings that are numbers', () => {
    const port = (text: string) => readConfig(['--data-dir', '/d', '--listen', '127.0.0.1', '--port', text], {}).port;
    assert.equal(port('1'), 1);
    assert.equal(port('65535'), 65535);
    assert.equal(port('00080'), 80);
    assert.equal(readConfig(['--data-dir', '/d', '--listen', '127.0.0.1'], { CLAWKER_HOSTPROXY_PORT: '443' }).port, 443);
  });

  test('a data directory is required', () => {
    assert.throws(() => readConfig(['--listen', '127.0.0.1'], {}), { message: '--data-dir is required' });
    assert.throws(() => readConfig(['--data-dir', '', '--listen', '127.0.0.1'], { CLAWKER_HOSTPROXY_DATA_DIR: '/e' }), { message: '--data-dir is required' });
    assert.throws(() => readConfig(['--listen', '127.0.0.1'], { CLAWKER_HOSTPROXY_DATA_DIR: '' }), { message: '--data-dir is required' });
  });

  test('the listen address must be an IP address', () => {
    const message = '--listen must be an IP address (the firewall network gateway)';
    for (const listen of ['localhost', '1.2.3', '0.0.0.0.0', '', 'fd00::1::2', '172.30.0.1:80']) {
      assert.throws(() => readConfig(['--data-dir', '/d', '--listen', listen], {}), { message }, listen);
    }
    assert.throws(() => readConfig(['--data-dir', '/d'], {}), { message });
    assert.throws(() => readConfig(['--data-dir', '/d'], { CLAWKER_HOSTPROXY_LISTEN: 'gateway' }), { message });
  });

  test('the port must be a TCP port', () => {
    for (const text of ['0', '65536', '99999', '123456', '80x', 'x80', '', ' 80', '80 ', '-1', '+80', '1e3', '0x50', '8.0']) {
      assert.throws(() => readConfig(['--data-dir', '/d', '--listen', '127.0.0.1', `--port=${text}`], {}), { message: '--port must be a TCP port' }, JSON.stringify(text));
    }
    assert.throws(() => readConfig(['--data-dir', '/d', '--listen', '127.0.0.1'], { CLAWKER_HOSTPROXY_PORT: '0' }), { message: '--port must be a TCP port' });
  });

  test('the stack prefix is validated', () => {
    for (const prefix of ['Bad', 'under_score', '1abc', '-x']) {
      assert.throws(() => readConfig(['--data-dir', '/d', '--listen', '127.0.0.1', `--stack-prefix=${prefix}`], {}), /stack prefix .*use lower-case letters/, prefix);
    }
    assert.throws(() => readConfig(['--data-dir', '/d', '--listen', '127.0.0.1'], { CLAWKER_HOSTPROXY_STACK_PREFIX: 'NO' }), /stack prefix "NO"/);
  });

  test('the idle watch: grace and poll in milliseconds from argv or the environment, 0 allowed, refused otherwise', () => {
    const base = ['--data-dir', '/d', '--listen', '127.0.0.1'];
    assert.deepEqual(
      (({ idleGraceMs, idlePollMs }) => ({ idleGraceMs, idlePollMs }))(readConfig([...base, '--idle-grace-ms', '1500', '--idle-poll-ms', '0'], { CLAWKER_HOSTPROXY_IDLE_GRACE_MS: '9' })),
      { idleGraceMs: 1500, idlePollMs: 0 },
    );
    const fromEnv = readConfig(base, { CLAWKER_HOSTPROXY_IDLE_GRACE_MS: '0', CLAWKER_HOSTPROXY_IDLE_POLL_MS: '250' });
    assert.deepEqual([fromEnv.idleGraceMs, fromEnv.idlePollMs], [0, 250]);
    assert.equal(readConfig([...base, '--idle-poll-ms', '86400000'], {}).idlePollMs, 86_400_000);
    for (const text of ['', '-1', '1.5', '1e3', ' 5', '86400001', '123456789']) {
      assert.throws(() => readConfig([...base, `--idle-grace-ms=${text}`], {}), { message: '--idle-grace-ms must be a number of milliseconds (0 to 86400000)' }, JSON.stringify(text));
      assert.throws(() => readConfig(base, { CLAWKER_HOSTPROXY_IDLE_POLL_MS: text === '' ? 'x' : text }), { message: '--idle-poll-ms must be a number of milliseconds (0 to 86400000)' }, JSON.stringify(text));
    }
  });

  test('unknown options, positionals and options without a value are refused', () => {
    assert.throws(() => readConfig(['--data-dir', '/d', '--listen', '127.0.0.1', '--bogus'], {}), /Unknown option '--bogus'/);
    assert.throws(() => readConfig(['--data-dir', '/d', '--listen', '127.0.0.1', 'extra'], {}), /Unexpected argument 'extra'/);
    assert.throws(() => readConfig(['--data-dir', '/d', '--listen'], {}), /--listen <value>' argument missing/);
    assert.throws(() => readConfig(['--data-dir', '/d', '--listen', '127.0.0.1', '--port'], {}), /--port <value>' argument missing/);
  });
});

// ---- the daemon -----------------------------------------------------------------------------------

describe('host proxy daemon', { concurrency: false }, () => {
  test('listens, serves the agents of its stack with the secret, then writes a 0600 pid file', async () => {
    const dir = dataDir();
    const port = await freePort();
    const f = fakes({}, [agentContainer('clawker-p-dev', '127.0.0.1', 'test-b', 'test-b-net')]);
    const running = await startHostProxy({ dataDir: dir, listenAddress: '127.0.0.1', port, stackPrefix: 'test-b', dockerHost: 'unix:///my.sock', ...NO_IDLE }, f.deps);
    try {
      const pidPath = join(dir, 'hostproxy', 'hostproxy.pid');
      assert.equal(running.pidPath, pidPath);
      assert.equal(readFileSync(pidPath, 'utf8'), `{"pid":4242,"listenAddress":"127.0.0.1","port":${port},"stackPrefix":"test-b"}\n`);
      assert.equal(statSync(pidPath).mode & 0o777, 0o600);
      assert.deepEqual(f.sockets, ['unix:///my.sock']);
      const log = f.logs.get(join(dir, 'hostproxy', 'hostproxy.log'));
      assert.deepEqual(log, [`listening on 127.0.0.1:${port} for the agents of stack test-b (network test-b-net), pid 4242`]);
      assert.deepEqual([...f.logs.keys()], [join(dir, 'hostproxy', 'hostproxy.log')]);

      // The agent's token is derived from the secret read from the data directory.
      const token = hostProxyToken(SECRET, 'clawker-p-dev');
      const opened = await call(port, 'POST', '/v1/browser/open', { token, body: JSON.stringify({ url: 'https://example.test/x' }) });
      assert.equal(opened.status, 200);
      assert.deepEqual(f.opened, ['https://example.test/x']);
      const wrong = await call(port, 'POST', '/v1/browser/open', { token: hostProxyToken(Buffer.alloc(32, 1), 'clawker-p-dev'), body: '{"url":"https://example.test/y"}' });
      assert.equal(wrong.status, 403);
      assert.deepEqual(f.listed[0], {
        filters: { label: ['dev.clawker.managed=true', 'dev.clawker.component=agent', 'dev.clawker.stack=test-b'], status: ['running'] },
      });
      const git = await call(port, 'POST', '/v1/git/credential', { token, body: JSON.stringify({ operation: 'get', fields: { protocol: 'https', host: 'git.test' } }) });
      assert.equal(git.status, 404, 'the injected git runner answered none');
      assert.equal(f.proc.exits.length, 0);
    } finally {
      running.server.close();
      running.server.closeAllConnections();
    }
  });

  test('a server error after listening is logged with its code, or its name', async () => {
    const dir = dataDir();
    const f = fakes();
    const running = await startHostProxy({ dataDir: dir, listenAddress: '127.0.0.1', port: await freePort(), stackPrefix: 'clawker', dockerHost: undefined, ...NO_IDLE }, f.deps);
    try {
      assert.deepEqual(f.sockets, [undefined]);
      running.server.emit('error', Object.assign(new Error('x'), { code: 'EMFILE' }));
      running.server.emit('error', new TypeError('y'));
      assert.deepEqual(f.logs.get(join(dir, 'hostproxy', 'hostproxy.log'))!.slice(1), ['server error (EMFILE)', 'server error (TypeError)']);
      assert.equal(f.proc.exits.length, 0);
    } finally {
      running.server.close();
    }
  });

  test('a port already taken: the start fails, no pid file', async () => {
    const dir = dataDir();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const f = fakes();
      await assert.rejects(startHostProxy({ dataDir: dir, listenAddress: '127.0.0.1', port, stackPrefix: 'clawker', dockerHost: undefined, ...NO_IDLE }, f.deps), { code: 'EADDRINUSE' });
      assert.equal(existsSync(join(dir, 'hostproxy', 'hostproxy.pid')), false);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  test('stop: logs, removes our pid file, closes open connections and exits 0; once; a 2 s fallback exit, unref', async () => {
    const dir = dataDir();
    const port = await freePort();
    const f = fakes();
    const running = await startHostProxy({ dataDir: dir, listenAddress: '127.0.0.1', port, stackPrefix: 'clawker', dockerHost: undefined, ...NO_IDLE }, f.deps);
    // A kept-alive connection: closing must not wait for it.
    const socket = await new Promise<Socket>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
    });
    socket.write('GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await new Promise((resolve) => socket.once('data', resolve));
    const socketClosed = new Promise((resolve) => socket.once('close', resolve));
    const exited = f.proc.nextExit();
    running.stop('SIGTERM');
    running.stop('SIGINT');
    assert.equal(existsSync(running.pidPath), false);
    assert.equal(await exited, 0);
    await socketClosed;
    assert.deepEqual(f.proc.exits, [0]);
    assert.deepEqual(f.logs.get(join(dir, 'hostproxy', 'hostproxy.log'))!.slice(1), ['SIGTERM: stopping']);
    assert.equal(f.timers.length, 1);
    assert.equal(f.timers[0]!.ms, 2000);
    assert.equal(f.timers[0]!.unrefs, 1);
    f.timers[0]!.callback();
    assert.deepEqual(f.proc.exits, [0, 0]);
    assert.equal(running.server.listening, false);
  });

  test('idle: Docker is asked every poll (unref timers); an agent running keeps it, none for the grace stops it (pid file removed, exit 0)', async () => {
    const dir = dataDir();
    let clock = 1_000;
    let containers: unknown[] = [agentContainer('clawker-p-dev', '10.0.0.2')];
    const f = fakes({
      now: () => clock,
      docker: () => ({ listContainers: (async () => containers) as never }),
    });
    const running = await startHostProxy({ dataDir: dir, listenAddress: '127.0.0.1', port: await freePort(), stackPrefix: 'clawker', dockerHost: undefined, idleGraceMs: 60_000, idlePollMs: 30_000 }, f.deps);
    const tick = async (): Promise<void> => {
      const timer = f.timers.at(-1)!;
      assert.equal(timer.ms, 30_000);
      assert.equal(timer.unrefs, 1);
      timer.callback();
      await new Promise((resolve) => setImmediate(resolve));
    };
    try {
      clock += 90_000; // long past the grace, but an agent runs
      await tick();
      assert.equal(f.timers.length, 2, 'watching again');
      containers = [];
      clock += 59_999; // no agent since the last poll, not yet the grace
      await tick();
      assert.equal(f.timers.length, 3);
      assert.deepEqual(f.proc.exits, []);
      const exited = f.proc.nextExit();
      clock += 1;
      await tick();
      assert.equal(await exited, 0);
      assert.equal(existsSync(running.pidPath), false);
      assert.deepEqual(f.logs.get(join(dir, 'hostproxy', 'hostproxy.log'))!.slice(1), ['no agent of the stack has run for 60 s: stopping']);
      assert.equal(running.server.listening, false);
    } finally {
      running.server.close();
    }
  });

  test('idle: Docker failing 10 times in a row stops it; a success in between starts the count again; poll 0 watches nothing', async () => {
    const dir = dataDir();
    let fail = true;
    const f = fakes({
      now: () => 0,
      docker: () => ({
        listContainers: (async () => {
          if (fail) throw new Error('connect ENOENT /var/run/docker.sock');
          return [agentContainer('clawker-p-dev', '10.0.0.2')];
        }) as never,
      }),
    });
    const running = await startHostProxy({ dataDir: dir, listenAddress: '127.0.0.1', port: await freePort(), stackPrefix: 'clawker', dockerHost: undefined, idleGraceMs: 0, idlePollMs: 5 }, f.deps);
    const tick = async (): Promise<void> => {
      f.timers.at(-1)!.callback();
      await new Promise((resolve) => setImmediate(resolve));
    };
    try {
      for (let i = 0; i < 9; i += 1) await tick();
      fail = false;
      await tick();
      fail = true;
      for (let i = 0; i < 9; i += 1) await tick();
      assert.deepEqual(f.proc.exits, [], 'nine failures after a success are not ten');
      const exited = f.proc.nextExit();
      await tick();
      assert.equal(await exited, 0);
      assert.deepEqual(f.logs.get(join(dir, 'hostproxy', 'hostproxy.log'))!.slice(1), ['Docker could not list the agents 10 times in a row (last: connect ENOENT /var/run/docker.sock): stopping']);
    } finally {
      running.server.close();
    }
    const quiet = fakes();
    const never = await startHostProxy({ dataDir: dataDir(), listenAddress: '127.0.0.1', port: await freePort(), stackPrefix: 'clawker', dockerHost: undefined, idleGraceMs: 0, idlePollMs: 0 }, quiet.deps);
    never.server.close();
    assert.equal(quiet.timers.length, 0);
  });

  test("stop leaves a pid file that is another daemon's, and copes with a missing or garbled one", async () => {
    for (const [content, kept] of [
      ['{"pid":999999,"listenAddress":"127.0.0.1","port":1,"stackPrefix":"clawker"}\n', true],
      ['{"listenAddress":"127.0.0.1"}\n', true],
      ['not json', true],
      [null, false],
    ] as const) {
      const dir = dataDir();
      const f = fakes();
      const running = await startHostProxy({ dataDir: dir, listenAddress: '127.0.0.1', port: await freePort(), stackPrefix: 'clawker', dockerHost: undefined, ...NO_IDLE }, f.deps);
      if (content === null) rmSync(running.pidPath);
      else writeFileSync(running.pidPath, content);
      const exited = f.proc.nextExit();
      running.stop('SIGINT');
      assert.equal(await exited, 0);
      assert.equal(existsSync(running.pidPath), kept, String(content));
      if (content !== null) assert.equal(readFileSync(running.pidPath, 'utf8'), content);
      assert.deepEqual(f.logs.get(join(dir, 'hostproxy', 'hostproxy.log'))!.slice(1), ['SIGINT: stopping']);
    }
  });

  test('run: a bad config is said on stdout without a log file, and exits 2 before anything else', async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [[], {}, 'failed: --data-dir is required'],
      [['--data-dir', '/d', '--listen', 'gateway'], {}, 'failed: --listen must be an IP address (the firewall network gateway)'],
      [['--data-dir', '/d', '--listen', '127.0.0.1', '--port', '65536'], {}, 'failed: --port must be a TCP port'],
      [['--data-dir', '/d'], { CLAWKER_HOSTPROXY_LISTEN: '127.0.0.1', CLAWKER_HOSTPROXY_PORT: '0' }, 'failed: --port must be a TCP port'],
    ];
    for (const [argv, env, line] of cases) {
      let secretRead = false;
      const f = fakes({
        readSecret: () => {
          secretRead = true;
          return SECRET;
        },
      });
      await runHostProxy(argv, env, f.deps);
      assert.deepEqual(f.proc.exits, [2], line);
      assert.deepEqual([...f.logs.entries()], [['', [line]]]);
      assert.deepEqual(f.written, []);
      assert.equal(secretRead, false);
      assert.deepEqual(f.sockets, []);
      assert.deepEqual(f.proc.eventNames(), []);
    }
  });

  test('run: a secret others can read is refused: exit 1, nothing listens, no pid file', async () => {
    const dir = dataDir(0o640);
    const port = await freePort();
    const f = fakes();
    await runHostProxy(['--data-dir', dir, '--listen', '127.0.0.1', '--port', String(port)], {}, f.deps);
    assert.deepEqual(f.proc.exits, [1]);
    assert.equal(f.written.length, 1);
    assert.match(
      f.written[0]!,
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[hostproxy\] failed: \S+\/hostproxy\/secret is readable by other users \(mode 640\); expected 600\n$/,
    );
    assert.equal(existsSync(join(dir, 'hostproxy', 'hostproxy.pid')), false);
    await assert.rejects(call(port, 'GET', '/v1/health'), { code: 'ECONNREFUSED' });
    assert.deepEqual(f.proc.eventNames(), []);
  });

  test('run: a failure that is not an Error is said as it is', async () => {
    const f = fakes({
      readSecret: () => {
        throw 'no secret today';
      },
    });
    await runHostProxy(['--data-dir', '/d', '--listen', '127.0.0.1'], {}, f.deps);
    assert.deepEqual(f.proc.exits, [1]);
    assert.match(f.written.join(''), /^\S+Z \[hostproxy\] failed: no secret today\n$/);
  });

  test('run: SIGTERM and SIGINT stop it and remove the pid file; SIGHUP is ignored', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const dir = dataDir();
      const port = await freePort();
      const f = fakes();
      await runHostProxy(['--port', String(port)], { CLAWKER_HOSTPROXY_DATA_DIR: dir, CLAWKER_HOSTPROXY_LISTEN: '127.0.0.1' }, f.deps);
      const pidPath = join(dir, 'hostproxy', 'hostproxy.pid');
      assert.equal(JSON.parse(readFileSync(pidPath, 'utf8')).port, port);
      assert.deepEqual(f.proc.eventNames().sort(), ['SIGHUP', 'SIGINT', 'SIGTERM']);
      for (const name of ['SIGHUP', 'SIGINT', 'SIGTERM']) assert.equal(f.proc.listenerCount(name), 1, name);
      f.proc.emit('SIGHUP');
      assert.equal(existsSync(pidPath), true);
      assert.equal(f.proc.exits.length, 0);
      assert.equal((await call(port, 'GET', '/v1/health')).status, 200);
      const exited = f.proc.nextExit();
      f.proc.emit(signal);
      assert.equal(await exited, 0);
      assert.equal(existsSync(pidPath), false);
      assert.deepEqual(f.logs.get(join(dir, 'hostproxy', 'hostproxy.log'))!.slice(1), [`${signal}: stopping`]);
      assert.deepEqual(f.written, []);
    }
  });
});

// ---- the real world -------------------------------------------------------------------------------

describe('host proxy: the real dependencies', () => {
  test('process, secret reader, timers, Docker at the given address or the platform default', () => {
    const deps = nodeHostProxyDeps();
    assert.equal(deps.process, process);
    assert.equal(deps.readSecret, readHostProxySecret);
    assert.equal(deps.setTimeout, setTimeout);
    assert.equal(deps.now, Date.now);
    assert.equal(deps.openLog, daemonLog);
    assert.equal(typeof deps.git, 'function');
    assert.equal(typeof deps.openUrl, 'function');
    const modem = (docker: unknown) => (docker as { modem: { socketPath: unknown; host: unknown; port: unknown } }).modem;
    assert.equal(modem(deps.docker('unix:///run/other.sock')).socketPath, '/run/other.sock');
    const tcp = modem(deps.docker('tcp://10.0.0.5:2375'));
    assert.deepEqual([tcp.host, tcp.port, tcp.socketPath], ['10.0.0.5', 2375, undefined]);
    const saved = { host: process.env.DOCKER_HOST, config: process.env.DOCKER_CONFIG };
    delete process.env.DOCKER_HOST;
    process.env.DOCKER_CONFIG = dataDir(); // no docker context here
    try {
      assert.equal(modem(deps.docker(undefined)).socketPath, '/var/run/docker.sock');
    } finally {
      if (saved.host !== undefined) process.env.DOCKER_HOST = saved.host;
      if (saved.config !== undefined) process.env.DOCKER_CONFIG = saved.config;
      else delete process.env.DOCKER_CONFIG;
    }
  });

  test("the daemon's arguments are those after node's and the script's path", () => {
    assert.deepEqual(daemonArguments(['/usr/bin/node', '/x/hostproxy.js', '--data-dir', '/d']), ['--data-dir', '/d']);
    assert.deepEqual(daemonArguments(['/usr/bin/node', '/x/hostproxy.js']), []);
  });

  test('write goes to stdout as it is', () => {
    const deps = nodeHostProxyDeps();
    const seen: unknown[] = [];
    const original = process.stdout.write;
    process.stdout.write = ((chunk: unknown) => {
      seen.push(chunk);
      return true;
    }) as typeof process.stdout.write;
    try {
      deps.write('last words\n');
    } finally {
      process.stdout.write = original;
    }
    assert.deepEqual(seen, ['last words\n']);
  });

  test('the log: timestamped lines on the descriptor, rotated at the log file past 1 MiB', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawker-hostproxy-log-'));
    made.push(dir);
    const path = join(dir, 'hostproxy.log');
    const fd = openSync(path, 'a', 0o600);
    try {
      const log = daemonLog(path, fd);
      log('hello');
      assert.match(readFileSync(path, 'utf8'), /^\S+Z \[hostproxy\] hello\n$/);
      const line = 'x'.repeat(999);
      // 1 MiB is about 1024 lines of this length: rotation comes after, not before.
      for (let i = 0; i < 1000; i++) log(line);
      assert.equal(existsSync(`${path}.1`), false, 'not rotated below 1 MiB');
      for (let i = 0; i < 100; i++) log(line);
      assert.equal(existsSync(`${path}.1`), true, 'rotated past 1 MiB');
      assert.ok(statSync(path).size < 256 * 1024);
    } finally {
      closeSync(fd);
    }
  });
});
