// Finding the Docker engine (issue 14, item 1): the address forms the docker CLI accepts, the order
// DOCKER_HOST → settings.yaml docker.host → docker context → platform default, the context store on
// disk, TLS, and the messages that name the engine tried.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadSettings } from '../../src/core/config/load';
import { formatEngineAddress, parseEngineAddress } from '../../src/core/engine/engineAddress';
import { type ContextLookup, describeEngine, EngineConfigError, engineSocketPath, engineTlsEnv, resolveEngine } from '../../src/core/engine/engineResolution';
import { dockerConfigDir, lookupDockerContext } from '../../src/platform/docker/dockerContextStore';
import { dockerOptionsFor, resolveEngineFor } from '../../src/platform/docker/engineClient';

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'clawker-engine-'));
  made.push(d);
  return d;
};

describe('engine addresses', () => {
  test('the four schemes, with the docker CLI default ports', () => {
    assert.deepEqual(parseEngineAddress('unix:///var/run/docker.sock'), { kind: 'unix', path: '/var/run/docker.sock' });
    assert.deepEqual(parseEngineAddress('npipe:////./pipe/docker_engine'), { kind: 'npipe', path: '//./pipe/docker_engine' });
    assert.deepEqual(parseEngineAddress('tcp://10.0.0.5'), { kind: 'tcp', host: '10.0.0.5', port: 2375 });
    assert.deepEqual(parseEngineAddress('tcp://10.0.0.5', true), { kind: 'tcp', host: '10.0.0.5', port: 2376 });
    assert.deepEqual(parseEngineAddress('tcp://engine.lan:80'), { kind: 'tcp', host: 'engine.lan', port: 80 }, 'a written port is kept even where URL would drop it');
    assert.deepEqual(parseEngineAddress('tcp://[::1]:2376'), { kind: 'tcp', host: '::1', port: 2376 });
    assert.deepEqual(parseEngineAddress('ssh://me@builder'), { kind: 'ssh', host: 'builder', port: 22, user: 'me' });
    assert.deepEqual(parseEngineAddress('ssh://builder:2222'), { kind: 'ssh', host: 'builder', port: 2222 });
    assert.deepEqual(parseEngineAddress('  TCP://h:1  '), { kind: 'tcp', host: 'h', port: 1 }, 'scheme case and surrounding blanks');
  });

  test('refusals say what is wrong and how to write it', () => {
    const error = (text: string) => (parseEngineAddress(text) as { error: string }).error;
    assert.equal(error('/var/run/docker.sock'), "'/var/run/docker.sock' has no scheme: write unix:///var/run/docker.sock");
    assert.match(error('localhost:2375'), /^'localhost:2375' is not an engine address: expected unix:\/\/\/path, tcp:\/\/host:port, ssh:\/\/user@host or npipe:/);
    assert.equal(error('http://h:2375'), "'http://h:2375': unsupported scheme http:// (use unix://, npipe://, tcp://, ssh://)");
    assert.equal(error('unix://'), "'unix://' names no socket path");
    assert.equal(error('npipe://'), "'npipe://' names no pipe path");
    assert.equal(error('unix://run/docker.sock'), "'unix://run/docker.sock': the socket path must be absolute (unix:///path)");
    assert.equal(error('tcp://h:2375/v1.41'), "'tcp://h:2375/v1.41': an engine address has no path or query");
    assert.equal(error('tcp://h:99999'), "'tcp://h:99999' is not a valid tcp:// address");
    assert.equal(error('tcp://h:0'), "'tcp://h:0': port 0 is out of range");
    assert.equal(error('tcp://me@h'), "'tcp://me@h': a tcp:// address has no user (TLS certificates identify you)");
    assert.equal(error('ssh://me:secret@h'), "'ssh://me:secret@h': never write a password in an engine address (use an SSH key or agent)");
  });

  test('printed back in the docker CLI form', () => {
    for (const text of ['unix:///run/user/1000/docker.sock', 'tcp://10.0.0.5:2376', 'tcp://[fd00::5]:2375', 'ssh://me@builder', 'ssh://builder:2222', 'npipe:////./pipe/docker_engine']) {
      const a = parseEngineAddress(text);
      assert.ok(!('error' in a));
      assert.equal(formatEngineAddress(a), text);
    }
  });
});

describe('which engine', () => {
  const noContext = (): ContextLookup => ({ found: false });
  const context = (host: string, extra: Partial<{ skipTlsVerify: boolean; tlsDir: string }> = {}) => (): ContextLookup => ({ found: true, name: 'colima', host, skipTlsVerify: false, ...extra });

  test('DOCKER_HOST first, then docker.host, then docker.socket, then the context, then the default', () => {
    const settings = { host: 'tcp://settings:2375', socket: '/settings.sock' };
    const ctx = context('unix:///ctx.sock');
    const pick = (env: Record<string, string>, s: { host?: string; socket?: string } | undefined, c = ctx) =>
      describeEngine(resolveEngine({ env, ...(s ? { settings: s } : {}), context: c, platform: 'linux' }));
    assert.equal(pick({ DOCKER_HOST: 'unix:///env.sock' }, settings), 'the Docker engine at unix:///env.sock (DOCKER_HOST)');
    assert.equal(pick({}, settings), 'the Docker engine at tcp://settings:2375 (settings.yaml docker.host)');
    assert.equal(pick({}, { socket: '/settings.sock' }), 'the Docker engine at unix:///settings.sock (settings.yaml docker.socket)');
    assert.equal(pick({}, {}), "the Docker engine at unix:///ctx.sock (docker context 'colima')");
    assert.equal(pick({ DOCKER_HOST: '  ' }, { host: '' }), "the Docker engine at unix:///ctx.sock (docker context 'colima')", 'blank values choose nothing');
    assert.equal(pick({}, undefined, noContext), 'the Docker engine at unix:///var/run/docker.sock (the default)');
    assert.equal(describeEngine(resolveEngine({ env: {}, context: noContext, platform: 'win32' })), 'the Docker engine at npipe:////./pipe/docker_engine (the default)');
  });

  test('the context store is asked only when nothing above chose, with DOCKER_CONTEXT when set', () => {
    const asked: (string | undefined)[] = [];
    const spy = (name: string | undefined): ContextLookup => (asked.push(name), { found: false });
    resolveEngine({ env: { DOCKER_HOST: 'unix:///x.sock' }, context: spy, platform: 'linux' });
    resolveEngine({ env: {}, settings: { host: 'unix:///y.sock' }, context: spy, platform: 'linux' });
    assert.deepEqual(asked, []);
    resolveEngine({ env: { DOCKER_CONTEXT: 'remote' }, context: spy, platform: 'linux' });
    resolveEngine({ env: {}, context: spy, platform: 'linux' });
    assert.deepEqual(asked, ['remote', undefined]);
  });

  test('a context named but broken is an error, never a silent fallback to another engine', () => {
    assert.throws(
      () => resolveEngine({ env: {}, context: () => ({ found: false, error: "docker context 'gone' does not exist" }), platform: 'linux' }),
      (e: unknown) => e instanceof EngineConfigError && e.message === "docker context 'gone' does not exist" && /docker context ls/.test(e.next),
    );
  });

  test('a bad address names where it came from', () => {
    assert.throws(() => resolveEngine({ env: { DOCKER_HOST: 'docker.sock' }, context: noContext, platform: 'linux' }), /^EngineConfigError: DOCKER_HOST: 'docker.sock' is not an engine address/);
    assert.throws(() => resolveEngine({ env: {}, settings: { host: 'ftp://x' }, context: noContext, platform: 'linux' }), /settings\.yaml docker\.host: 'ftp:\/\/x': unsupported scheme/);
    assert.throws(() => resolveEngine({ env: {}, context: context('bogus'), platform: 'linux' }), /docker context 'colima': 'bogus' is not an engine address/);
  });

  test('TLS: DOCKER_TLS_VERIFY and DOCKER_CERT_PATH as the docker CLI reads them; 2376 by default with TLS', () => {
    const r = (env: Record<string, string>) => resolveEngine({ env: { DOCKER_HOST: 'tcp://h', ...env }, context: noContext, platform: 'linux' });
    assert.equal(r({}).tls, undefined);
    assert.equal((r({}).address as { port: number }).port, 2375);
    assert.deepEqual(r({ DOCKER_TLS_VERIFY: '1' }).tls, { verify: true });
    assert.equal((r({ DOCKER_TLS_VERIFY: '1' }).address as { port: number }).port, 2376);
    assert.deepEqual(r({ DOCKER_TLS_VERIFY: '0', DOCKER_CERT_PATH: '/c' }).tls, { verify: false, certDir: '/c' });
    assert.deepEqual(r({ DOCKER_TLS_VERIFY: '', DOCKER_CERT_PATH: '' }).tls, undefined);
    const fromSettings = resolveEngine({ env: { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/c' }, settings: { host: 'tcp://h:2376' }, context: noContext, platform: 'linux' });
    assert.deepEqual(fromSettings.tls, { verify: true, certDir: '/c' });
    const unixFromSettings = resolveEngine({ env: { DOCKER_TLS_VERIFY: '1' }, settings: { host: 'unix:///s.sock' }, context: noContext, platform: 'linux' });
    assert.equal(unixFromSettings.tls, undefined, 'a socket has no TLS');
    const ctx = resolveEngine({ env: {}, context: context('tcp://ctx', { tlsDir: '/store/tls' }), platform: 'linux' });
    assert.deepEqual([ctx.tls, ctx.context, (ctx.address as { port: number }).port], [{ verify: true, certDir: '/store/tls' }, 'colima', 2376]);
    assert.deepEqual(resolveEngine({ env: {}, context: context('tcp://ctx:2376', { skipTlsVerify: true }), platform: 'linux' }).tls, { verify: false });
    assert.deepEqual(engineTlsEnv(ctx), { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/store/tls' });
    assert.deepEqual(engineTlsEnv(r({})), {});
  });

  test("the socket the engine's containers see: a unix address names it, tcp and ssh engines serve their default", () => {
    const s = (host: string) => engineSocketPath(resolveEngine({ env: { DOCKER_HOST: host }, context: noContext, platform: 'linux' }));
    assert.equal(s('unix:///run/user/1000/docker.sock'), '/run/user/1000/docker.sock');
    assert.equal(s('tcp://10.0.0.5:2376'), '/var/run/docker.sock');
    assert.equal(s('ssh://me@builder'), '/var/run/docker.sock');
  });
});

describe('the docker context store on disk', () => {
  function store(contexts: Record<string, unknown>, current?: unknown, tls: string[] = []): string {
    const dir = tempDir();
    if (current !== undefined) writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: {}, currentContext: current }));
    for (const [name, meta] of Object.entries(contexts)) {
      const digest = createHash('sha256').update(name).digest('hex');
      mkdirSync(join(dir, 'contexts', 'meta', digest), { recursive: true });
      writeFileSync(join(dir, 'contexts', 'meta', digest, 'meta.json'), typeof meta === 'string' ? meta : JSON.stringify(meta));
      if (tls.includes(name)) mkdirSync(join(dir, 'contexts', 'tls', digest, 'docker'), { recursive: true });
    }
    return dir;
  }
  const meta = (name: string, host: string, skip = false) => ({ Name: name, Metadata: { Description: 'x' }, Endpoints: { docker: { Host: host, SkipTLSVerify: skip } } });

  test("config.json's currentContext, or the one asked for, read from contexts/meta/<sha256>", () => {
    const dir = store({ colima: meta('colima', 'unix:///Users/me/.colima/default/docker.sock'), remote: meta('remote', 'tcp://10.0.0.9:2376', true) }, 'colima', ['remote']);
    assert.deepEqual(lookupDockerContext(dir, undefined), { found: true, name: 'colima', host: 'unix:///Users/me/.colima/default/docker.sock', skipTlsVerify: false });
    const digest = createHash('sha256').update('remote').digest('hex');
    assert.deepEqual(lookupDockerContext(dir, 'remote'), { found: true, name: 'remote', host: 'tcp://10.0.0.9:2376', skipTlsVerify: true, tlsDir: join(dir, 'contexts', 'tls', digest, 'docker') });
  });

  test('nothing chosen: no config.json, no currentContext, or the built-in default', () => {
    assert.deepEqual(lookupDockerContext(tempDir(), undefined), { found: false });
    assert.deepEqual(lookupDockerContext(store({}, null), undefined), { found: false });
    assert.deepEqual(lookupDockerContext(store({}, 'default'), undefined), { found: false });
    assert.deepEqual(lookupDockerContext(tempDir(), 'default'), { found: false });
  });

  test('chosen but broken: each case says which file', () => {
    const missing = lookupDockerContext(store({}, 'gone'), undefined) as { error: string };
    assert.match(missing.error, /^docker context 'gone' does not exist \(no .*contexts\/meta\/[0-9a-f]{64}\/meta\.json\)$/);
    assert.match((lookupDockerContext(store({ k8s: { Name: 'k8s', Endpoints: { kubernetes: { Host: 'x' } } } }, 'k8s'), undefined) as { error: string }).error, /^docker context 'k8s' has no docker endpoint/);
    assert.match((lookupDockerContext(store({ bad: '{not json' }, 'bad'), undefined) as { error: string }).error, /^docker context 'bad': .*meta\.json is unreadable/);
    const badConfig = tempDir();
    writeFileSync(join(badConfig, 'config.json'), '{');
    assert.match((lookupDockerContext(badConfig, undefined) as { error: string }).error, /config\.json is not valid JSON/);
  });

  test('DOCKER_CONFIG moves the store; the full path from environment to engine', () => {
    assert.equal(dockerConfigDir({ DOCKER_CONFIG: '/cfg' }, '/home/me'), '/cfg');
    assert.equal(dockerConfigDir({}, '/home/me'), '/home/me/.docker');
    const dir = store({ colima: meta('colima', 'unix:///colima.sock') }, 'colima');
    assert.equal(describeEngine(resolveEngineFor({ DOCKER_CONFIG: dir }, undefined, 'linux')), "the Docker engine at unix:///colima.sock (docker context 'colima')");
    assert.equal(describeEngine(resolveEngineFor({ DOCKER_CONFIG: dir }, { host: 'unix:///mine.sock' }, 'linux')), 'the Docker engine at unix:///mine.sock (settings.yaml docker.host)');
  });
});

describe('dockerode options', () => {
  const noContext = (): ContextLookup => ({ found: false });
  const engine = (env: Record<string, string>) => resolveEngine({ env, context: noContext, platform: 'linux' });

  test('a socket, plain tcp and ssh; options the environment would otherwise fill are cleared', () => {
    const unix = dockerOptionsFor(engine({ DOCKER_HOST: 'unix:///s.sock' }), {});
    assert.equal(unix.socketPath, '/s.sock');
    assert.ok('host' in unix && unix.host === undefined, 'host is set to undefined, so docker-modem does not take DOCKER_HOST');
    assert.deepEqual(
      [dockerOptionsFor(engine({ DOCKER_HOST: 'tcp://h:2375' }), {})].map((o) => [o.protocol, o.host, o.port, o.socketPath]),
      [['http', 'h', 2375, undefined]],
    );
    const ssh = dockerOptionsFor(engine({ DOCKER_HOST: 'ssh://me@builder:2222' }), { SSH_AUTH_SOCK: '/agent.sock' });
    assert.deepEqual([ssh.protocol, ssh.host, ssh.port, ssh.username, ssh.sshOptions], ['ssh', 'builder', 2222, 'me', { agent: '/agent.sock' }]);
  });

  test('TLS reads ca/cert/key from the cert folder; a missing ca under verification names the engine and the file', () => {
    const dir = tempDir();
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, f), `-- ${f} --`);
    const o = dockerOptionsFor(engine({ DOCKER_HOST: 'tcp://h', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir }), {});
    assert.deepEqual([o.protocol, o.port, String(o.ca), String(o.cert), String(o.key), 'agent' in o], ['https', 2376, '-- ca.pem --', '-- cert.pem --', '-- key.pem --', false]);
    const empty = tempDir();
    assert.throws(
      () => dockerOptionsFor(engine({ DOCKER_HOST: 'tcp://h', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: empty }), {}),
      (e: unknown) => e instanceof EngineConfigError && e.message.startsWith('the Docker engine at tcp://h:2376 (DOCKER_HOST): cannot read ') && e.message.includes('ca.pem (ENOENT)'),
    );
    const home = tempDir();
    mkdirSync(join(home, '.docker'));
    writeFileSync(join(home, '.docker', 'ca.pem'), 'home ca');
    assert.equal(String(dockerOptionsFor(engine({ DOCKER_HOST: 'tcp://h', DOCKER_TLS_VERIFY: '1' }), { HOME: home }).ca), 'home ca', 'DOCKER_CERT_PATH defaults to ~/.docker');
  });

  test("a context's SkipTLSVerify: no ca needed, and the certificate is not checked", () => {
    const skip = resolveEngine({ env: {}, context: () => ({ found: true, name: 'lab', host: 'tcp://lab:2376', skipTlsVerify: true }), platform: 'linux' });
    const o = dockerOptionsFor(skip, {}) as { agent?: { options: { rejectUnauthorized?: boolean } }; ca?: unknown };
    assert.equal(o.ca, undefined);
    assert.equal(o.agent?.options.rejectUnauthorized, false);
  });
});

describe('settings.yaml docker section', () => {
  test('docker.host is checked as an engine address; docker.socket still read, with a warning naming its replacement', () => {
    const bad = loadSettings('docker:\n  host: /var/run/docker.sock\n');
    assert.equal(bad.failed, true);
    assert.ok(bad.problems.some((p) => p.severity === 'error' && /has no scheme: write unix:\/\/\/var\/run\/docker\.sock/.test(p.message)));
    const good = loadSettings('docker:\n  host: ssh://me@builder\n');
    assert.equal(good.failed, false);
    assert.equal(good.config?.docker.host, 'ssh://me@builder');
    const old = loadSettings('docker:\n  socket: /run/user/1000/docker.sock\n');
    assert.equal(old.failed, false);
    assert.equal(old.config?.docker.socket, '/run/user/1000/docker.sock');
    const warning = old.problems.find((p) => p.code === 'renamed-key');
    assert.equal(warning?.message, "'docker.socket' is an older name, still read: write 'host: unix://PATH' instead");
    assert.equal(loadSettings('docker: {}\n').config?.docker.socket, undefined, 'no default socket: the resolver decides');
  });
});
