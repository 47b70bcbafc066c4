/**
 * The agent lifecycle's pure parts: names, the container spec (network, cgroup, privileges,
 * mounts, environment, labels), the ownership checks every action makes, which agent a command
 * means, what `ps` shows, and the files put into a container before its first start.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AGENTD_CAPABILITIES,
  AGENT_UID,
  ENV_AGENT,
  ENV_FIREWALL_ENABLED,
  ENV_HOST_PROXY,
  ENV_PROJECT,
  HOST_PROXY_TOKEN_FILE,
  LABEL_SUPERVISOR,
  SESSION_FILES,
  SUPERVISOR_AGENTD,
  WORKSPACE_DIR,
} from '../../src/core/agents/agentContract';
import {
  agentContainerSpec,
  agentEnvironment,
  AgentSpecError,
  DEFAULT_PROJECT_SETTINGS,
  effectiveCapabilities,
  LABEL_FIREWALL,
  LABEL_WORKSPACE,
  projectSettingsOf,
} from '../../src/core/agents/agentContainerSpec';
import { agentContainerName, AgentNameError, agentNameProblem, resolveProjectName, sanitizeProjectName } from '../../src/core/agents/agentNames';
import {
  agentLabelFilter,
  agentSummary,
  chooseAgent,
  firewallModeProblem,
  firewallStateOf,
  hostProxyUrlOf,
  ownershipProblem,
  sessionArchiveEntries,
} from '../../src/core/agents/lifecycle';
import { loadProject } from '../../src/core/config/load';
import { agentSpecInput } from '../helpers/agentSpecInput';
import { packArchive } from '../../src/platform/docker/archive';

const input = agentSpecInput;

const envOf = (lines: readonly string[]): Record<string, string> => Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

describe('names', () => {
  test('<stack>.<project>.<agent>; the e2e prefix works the same way', () => {
    assert.equal(agentContainerName('clawker', 'web', 'dev'), 'clawker.web.dev');
    assert.equal(agentContainerName(`clawker-e2e-${process.pid}`, 'e2e', 'late'), `clawker-e2e-${process.pid}.e2e.late`);
  });

  test('agent names: lower-case DNS labels; each refusal says why', () => {
    for (const ok of ['dev', 'a', 'review-2', '0x']) assert.equal(agentNameProblem(ok), undefined, ok);
    assert.match(agentNameProblem('Dev')!, /upper-case letters; use "dev"/);
    assert.match(agentNameProblem('a.b')!, /no '\.', '_' or spaces/);
    assert.match(agentNameProblem('a_b')!, /no '\.', '_' or spaces/);
    assert.match(agentNameProblem('../x')!, /lower-case letters, digits and '-'/);
    assert.match(agentNameProblem('-x')!, /starting and ending with a letter or digit/);
    assert.match(agentNameProblem('')!, /empty/);
    assert.match(agentNameProblem('a'.repeat(33))!, /33 characters; at most 32/);
    assert.throws(() => agentContainerName('clawker', 'web', 'a b'), AgentNameError);
  });

  test('project names: `name:` or the folder, sanitised into the alphabet (and said so); nothing usable is an error', () => {
    assert.deepEqual(resolveProjectName(undefined, '/home/me/src/web'), { name: 'web', source: 'folder' });
    assert.deepEqual(resolveProjectName('My App', '/x'), { name: 'my-app', source: 'config', from: 'My App' });
    assert.deepEqual(resolveProjectName(undefined, '/home/me/src/Café_Project.v2/'), { name: 'cafe-project-v2', source: 'folder', from: 'Café_Project.v2' });
    assert.equal(sanitizeProjectName('x'.repeat(50) + '-y'), 'x'.repeat(40));
    const bad = resolveProjectName('!!!', '/x');
    assert.ok('error' in bad && /name: in \.clawker\.yaml/.test(bad.error), JSON.stringify(bad));
    const folder = resolveProjectName(undefined, '/tmp/___');
    assert.ok('error' in folder && /set name: in \.clawker\.yaml/.test(folder.error));
  });

  test('the container name is the session certificate CN: at most 64 characters, and the error says what to shorten', () => {
    const p = 'p'.repeat(40);
    assert.throws(() => agentContainerName('clawker-e2e-1234567', p, 'a'.repeat(20)), /at most 64 .*shorten the agent name or the project's/);
  });
});

describe('the container spec', () => {
  test('firewall on: the stack network, CoreDNS only, the agents cgroup parent, our labels incl. the workspace', () => {
    const { name, create } = agentContainerSpec(input());
    assert.equal(name, 'clawker.web.dev');
    assert.equal(create.HostConfig.NetworkMode, 'clawker-net');
    assert.deepEqual(create.HostConfig.Dns, ['192.168.215.201']);
    assert.equal(create.HostConfig.CgroupParent, '/clawker-agents');
    assert.deepEqual(create.Labels, {
      'dev.clawker.managed': 'true',
      'dev.clawker.component': 'agent',
      'dev.clawker.stack': 'clawker',
      'dev.clawker.project': 'web',
      'dev.clawker.agent': 'dev',
      [LABEL_WORKSPACE]: '/home/me/src/web',
      [LABEL_FIREWALL]: 'enabled',
      [LABEL_SUPERVISOR]: SUPERVISOR_AGENTD,
    });
    assert.equal(envOf(create.Env)[ENV_FIREWALL_ENABLED], 'true');
  });

  test('firewall off: the default bridge, no resolver override, no cgroup parent, CLAWKER_FIREWALL_ENABLED=false', () => {
    const { create } = agentContainerSpec(input({ firewall: { enabled: false } }));
    assert.equal(create.HostConfig.NetworkMode, 'bridge');
    assert.ok(!('Dns' in create.HostConfig));
    assert.ok(!('CgroupParent' in create.HostConfig));
    assert.equal(envOf(create.Env)[ENV_FIREWALL_ENABLED], 'false');
    assert.equal(create.Labels[LABEL_FIREWALL], 'disabled');
  });

  test("privileges: ALL dropped, only agentd's SETUID/SETGID/KILL back, never NET_RAW; no-new-privileges; no privileged, init, host namespaces", () => {
    const { create } = agentContainerSpec(input());
    const h = create.HostConfig;
    assert.deepEqual(h.CapDrop, ['ALL']);
    assert.ok(!h.CapAdd.includes('NET_RAW') && !h.CapAdd.includes('NET_ADMIN'));
    assert.deepEqual(h.CapAdd, [...AGENTD_CAPABILITIES]);
    assert.deepEqual(h.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(h.Privileged, false);
    assert.equal(h.Init, false, 'agentd is PID 1');
    assert.notEqual(h.NetworkMode, 'host');
    assert.equal(h.PidMode, '');
    assert.equal(h.IpcMode, 'private');
    assert.equal(h.RestartPolicy.Name, 'no');
  });

  test('terminal: Tty, OpenStdin, StdinOnce false; WorkingDir /workspace; no Cmd by default (the image runs claude), the -- command otherwise', () => {
    const { create } = agentContainerSpec(input());
    assert.equal(create.Tty, true);
    assert.equal(create.OpenStdin, true);
    assert.equal(create.StdinOnce, false);
    assert.equal(create.WorkingDir, WORKSPACE_DIR);
    assert.ok(!('Cmd' in create));
    assert.deepEqual(agentContainerSpec(input({ cmd: ['bash', '-l'] })).create.Cmd, ['bash', '-l']);
    assert.throws(() => agentContainerSpec(input({ cmd: [] })), /empty/);
  });

  test('mounts: the workspace read-write at /workspace and nothing else; no Docker socket by default', () => {
    const spec = agentContainerSpec(input());
    assert.deepEqual(spec.create.HostConfig.Mounts, [{ Type: 'bind', Source: '/home/me/src/web', Target: WORKSPACE_DIR, ReadOnly: false }]);
    assert.ok(!JSON.stringify(spec.create).includes('docker.sock'));
    assert.deepEqual(spec.warnings, []);
  });

  test('security.docker_socket: true mounts the configured host socket, with a loud warning', () => {
    const spec = agentContainerSpec(input({ settings: { ...DEFAULT_PROJECT_SETTINGS, dockerSocket: true }, hostDockerSocket: '/run/user/1000/docker.sock' }));
    assert.deepEqual(spec.create.HostConfig.Mounts[1], { Type: 'bind', Source: '/run/user/1000/docker.sock', Target: '/var/run/docker.sock', ReadOnly: false });
    assert.equal(spec.warnings.length, 1);
    assert.match(spec.warnings[0]!, /full control of your Docker daemon.*containers the firewall does not cover/);
  });

  test('the workspace: absolute, and never / or the home folder', () => {
    assert.throws(() => agentContainerSpec(input({ workspace: 'src/web' })), /not an absolute path/);
    assert.throws(() => agentContainerSpec(input({ workspace: '/' })), /refusing to mount \//);
    assert.throws(() => agentContainerSpec(input({ workspace: '/home/me/' })), /home folder/);
  });
});

describe('security.cap_add', () => {
  test('added after the supervisor\'s own, normalised, without repeats, with a warning', () => {
    const r = effectiveCapabilities(['sys_ptrace', 'CAP_SYS_PTRACE', 'KILL']);
    assert.deepEqual(r.capAdd, ['SETUID', 'SETGID', 'KILL', 'SYS_PTRACE']);
    assert.match(r.warnings[0]!, /CAP_SYS_PTRACE/);
    assert.deepEqual(effectiveCapabilities([]), { capAdd: ['SETUID', 'SETGID', 'KILL'], warnings: [] });
  });

  test('NET_RAW, NET_ADMIN, SYS_ADMIN, BPF, ALL… are refused with the reason; unknown names too', () => {
    for (const cap of ['NET_RAW', 'net_admin', 'CAP_SYS_ADMIN', 'BPF', 'ALL', 'SYS_MODULE', 'DAC_READ_SEARCH']) {
      assert.throws(() => effectiveCapabilities([cap]), AgentSpecError, cap);
    }
    assert.throws(() => effectiveCapabilities(['NET_RAW']), /refused NET_RAW \(raw and packet sockets/);
    assert.throws(() => effectiveCapabilities(['FLY']), /"FLY" is not a Linux capability/);
    assert.throws(() => agentContainerSpec(input({ settings: { ...DEFAULT_PROJECT_SETTINGS, capAdd: ['NET_ADMIN'] } })), /security\.cap_add: refused NET_ADMIN/);
  });
});

describe('the environment', () => {
  test("clawker's variables first; agent.env after them; CLAWKER_* in agent.env dropped with a warning", () => {
    const spec = agentContainerSpec(input({ settings: { ...DEFAULT_PROJECT_SETTINGS, env: { FOO: 'bar', N: 3, B: true, CLAWKER_AGENT: 'evil', clawker_project: 'evil' } } }));
    assert.deepEqual(spec.create.Env.slice(0, 4), [`${ENV_PROJECT}=web`, `${ENV_AGENT}=dev`, `${ENV_FIREWALL_ENABLED}=true`, `${ENV_HOST_PROXY}=http://host.docker.internal:18374`]);
    assert.deepEqual(spec.create.Env.slice(4), ['FOO=bar', 'N=3', 'B=true']);
    const env = envOf(spec.create.Env);
    assert.equal(env[ENV_AGENT], 'dev');
    assert.equal(spec.create.Env.filter((l) => l.toUpperCase().startsWith('CLAWKER_AGENT=')).length, 1);
    assert.equal(spec.warnings.filter((w) => /CLAWKER_\* variables are set by clawker/.test(w)).length, 2);
  });

  test('no CLAWKER_HOST_PROXY when the project turns the host proxy off; a warning when it is on but unavailable', () => {
    const off = agentContainerSpec(input({ settings: { ...DEFAULT_PROJECT_SETTINGS, enableHostProxy: false } }));
    assert.ok(!(ENV_HOST_PROXY in envOf(off.create.Env)));
    assert.deepEqual(off.warnings, []);
    const { hostProxyUrl: _, ...rest } = input();
    const missing = agentContainerSpec(rest);
    assert.ok(!(ENV_HOST_PROXY in envOf(missing.create.Env)));
    assert.match(missing.warnings[0]!, /host proxy is enabled but not available/);
  });

  test('${NAME} refers to the image\'s environment or an earlier variable; unknown becomes empty, with a warning; bad names refused', () => {
    const r = agentEnvironment({ CLAWKER_AGENT: 'dev' }, { REQUESTS_CA_BUNDLE: '${SSL_CERT_FILE}', X: '${CLAWKER_AGENT}-${REQUESTS_CA_BUNDLE}', Y: '${NOPE}' }, ['SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt']);
    assert.deepEqual(r.env, ['CLAWKER_AGENT=dev', 'REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt', 'X=dev-/etc/ssl/certs/ca-certificates.crt', 'Y=']);
    assert.match(r.warnings[0]!, /\$\{NOPE\}/);
    assert.throws(() => agentEnvironment({}, { 'A=B': 'x' }), /"A=B" is not a variable name/);
    assert.throws(() => agentEnvironment({}, { '1A': 'x' }), /not a variable name/);
  });

  test('from .clawker.yaml: agent.env, docker_socket, cap_add, enable_host_proxy (schema defaults without a file)', () => {
    const loaded = loadProject('name: web\nagent:\n  env:\n    FOO: bar\nsecurity:\n  docker_socket: true\n  cap_add: [SYS_PTRACE]\n  enable_host_proxy: false\n');
    assert.deepEqual(projectSettingsOf(loaded.config), { env: { FOO: 'bar' }, dockerSocket: true, capAdd: ['SYS_PTRACE'], enableHostProxy: false });
    assert.deepEqual(projectSettingsOf(loadProject('{}\n').config), DEFAULT_PROJECT_SETTINGS);
    assert.deepEqual(projectSettingsOf(undefined), DEFAULT_PROJECT_SETTINGS);
  });

  test('variables that would run code in the root supervisor (NODE_OPTIONS, LD_PRELOAD, …) are dropped with a warning', () => {
    const spec = agentContainerSpec(input({ settings: { ...DEFAULT_PROJECT_SETTINGS, env: { NODE_OPTIONS: '--require /workspace/x.js', LD_PRELOAD: '/workspace/x.so', KEEP: '1' } } }));
    const env = envOf(spec.create.Env);
    assert.equal(env.NODE_OPTIONS, undefined);
    assert.equal(env.LD_PRELOAD, undefined);
    assert.equal(env.KEEP, '1');
    assert.equal(spec.warnings.filter((w) => /root supervisor/.test(w)).length, 2);
  });

  test('the supervisor label asks the control plane for a session; an unsupervised probe image goes without', () => {
    assert.equal(agentContainerSpec(input()).create.Labels[LABEL_SUPERVISOR], SUPERVISOR_AGENTD);
    assert.equal(agentContainerSpec(input({ supervised: false })).create.Labels[LABEL_SUPERVISOR], undefined);
  });

  test('labels a caller passes cannot make the container something else', () => {
    const { create } = agentContainerSpec(input({ extraLabels: { 'dev.clawker.component': 'envoy', 'dev.clawker.stack': 'other', 'x.test': '1' } }));
    assert.equal(create.Labels['dev.clawker.component'], 'agent');
    assert.equal(create.Labels['dev.clawker.stack'], 'clawker');
    assert.equal(create.Labels['x.test'], '1');
  });
});

describe('lifecycle decisions', () => {
  const ours = { 'dev.clawker.managed': 'true', 'dev.clawker.component': 'agent', 'dev.clawker.stack': 'clawker', 'dev.clawker.project': 'web', 'dev.clawker.agent': 'dev' };

  test('list filter: managed, agent, this stack (and project, agent)', () => {
    assert.deepEqual(agentLabelFilter({ stack: 'clawker', project: 'web' }), ['dev.clawker.managed=true', 'dev.clawker.component=agent', 'dev.clawker.stack=clawker', 'dev.clawker.project=web']);
  });

  test('ownership: a container is acted on only when every label matches; each refusal names the container', () => {
    const scope = { stack: 'clawker', project: 'web', agent: 'dev' };
    assert.equal(ownershipProblem('clawker.web.dev', ours, scope), undefined);
    assert.match(ownershipProblem('clawker.web.dev', {}, scope)!, /Clawker did not create; Clawker will not touch it/);
    assert.match(ownershipProblem('clawker.web.dev', null, scope)!, /did not create/);
    assert.match(ownershipProblem('clawker.web.dev', { ...ours, 'dev.clawker.managed': 'yes' }, scope)!, /did not create/);
    assert.match(ownershipProblem('clawker.web.dev', { ...ours, 'dev.clawker.component': 'envoy' }, scope)!, /envoy container, not an agent/);
    assert.match(ownershipProblem('clawker.web.dev', { ...ours, 'dev.clawker.stack': 'clawker-e2e-1' }, scope)!, /belongs to the stack/);
    assert.match(ownershipProblem('clawker.web.dev', { ...ours, 'dev.clawker.project': 'api' }, scope)!, /project "api"/);
    assert.match(ownershipProblem('clawker.web.dev', { ...ours, 'dev.clawker.agent': 'x' }, scope)!, /the agent "x"/);
  });

  test('which agent: --agent (checked), else the only one, else dev (run/create), else ask', () => {
    assert.deepEqual(chooseAgent('rev', ['dev'], 'existing', 'web'), { agent: 'rev' });
    assert.deepEqual(chooseAgent('Bad', [], 'run', 'web'), { error: agentNameProblem('Bad'), usage: true });
    assert.deepEqual(chooseAgent(undefined, ['x', 'y'], 'create', 'web'), { agent: 'dev' });
    assert.deepEqual(chooseAgent(undefined, [], 'run', 'web'), { agent: 'dev' });
    assert.deepEqual(chooseAgent(undefined, ['rev'], 'run', 'web'), { agent: 'rev' });
    assert.deepEqual(chooseAgent(undefined, ['rev'], 'existing', 'web'), { agent: 'rev' });
    const none = chooseAgent(undefined, [], 'existing', 'web');
    assert.ok('error' in none && !none.usage && /no agent yet; create one with: clawker run/.test(none.error));
    const two = chooseAgent(undefined, ['b', 'a'], 'run', 'web');
    assert.ok('error' in two && two.usage && /2 agents \(a, b\): say which one with --agent NAME/.test(two.error));
  });

  test('a container created under the other firewall setting does not start: it says to recreate it', () => {
    assert.equal(firewallModeProblem('n', { [LABEL_FIREWALL]: 'enabled' }, true), undefined);
    assert.equal(firewallModeProblem('n', { [LABEL_FIREWALL]: 'disabled' }, false), undefined);
    assert.match(firewallModeProblem('n', { [LABEL_FIREWALL]: 'disabled', 'dev.clawker.agent': 'dev' }, true)!, /firewall off, and the firewall is now on: it would run without it\. Recreate it$/);
    assert.match(firewallModeProblem('n', { [LABEL_FIREWALL]: 'enabled' }, false)!, /firewall\.enable: false/);
  });

  test('ps: state, status, exit code, times, image, workspace and the control plane\'s view', () => {
    const id = 'a'.repeat(64);
    const info = {
      Id: id,
      Name: '/clawker.web.dev',
      Created: '2025-01-01T00:00:00Z',
      State: { Status: 'exited', ExitCode: 3, StartedAt: '2025-01-01T00:00:01Z', FinishedAt: '2025-01-01T00:10:00Z' },
      Config: { Image: 'clawker-agent:latest', Labels: { ...ours, [LABEL_WORKSPACE]: '/src/web', [LABEL_FIREWALL]: 'enabled' } },
    };
    assert.deepEqual(agentSummary(info, 'Exited (3) 1 hour ago', undefined), {
      id,
      name: 'clawker.web.dev',
      agent: 'dev',
      project: 'web',
      workspace: '/src/web',
      state: 'exited',
      status: 'Exited (3) 1 hour ago',
      exitCode: 3,
      createdAt: '2025-01-01T00:00:00Z',
      startedAt: '2025-01-01T00:00:01Z',
      finishedAt: '2025-01-01T00:10:00Z',
      image: 'clawker-agent:latest',
      firewall: 'unknown',
    });
    const created = agentSummary({ ...info, State: { Status: 'created', StartedAt: '0001-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z' } }, undefined, { agents: [] });
    assert.equal(created.startedAt, undefined, "Docker's zero time is no time");
    assert.equal(created.status, 'created');
    assert.equal(created.firewall, 'not enrolled');
    assert.equal(firewallStateOf(id, ours, { agents: [{ container: id, state: 'bypassed' }] }), 'bypassed');
    assert.equal(firewallStateOf(id, { [LABEL_FIREWALL]: 'disabled' }, { agents: [] }), 'off');
  });

  test('the host proxy URL a container was created with', () => {
    assert.equal(hostProxyUrlOf(['A=1', `${ENV_HOST_PROXY}=http://10.0.0.1:18374`]), 'http://10.0.0.1:18374');
    assert.equal(hostProxyUrlOf(['A=1']), undefined);
    assert.equal(hostProxyUrlOf(null), undefined);
  });
});

describe('the files put into a container before its first start', () => {
  const files = { caPem: 'CA', certificatePem: 'CERT', privateKeyPem: 'KEY', hostProxyToken: 'f'.repeat(64) };

  test('session/ root 0700 with root-only 0600 files; the token belongs to the agent user, 0400', () => {
    const entries = sessionArchiveEntries(files);
    const by = Object.fromEntries(entries.map((e) => [`/${e.path}`, e]));
    assert.deepEqual(entries.map((e) => `/${e.path}`), ['/run/clawker', '/run/clawker/session', SESSION_FILES.ca, SESSION_FILES.certificate, SESSION_FILES.key, '/run/clawker/hostproxy', HOST_PROXY_TOKEN_FILE]);
    assert.deepEqual(by['/run/clawker/session'], { path: 'run/clawker/session', type: 'directory', mode: 0o700, uid: 0, gid: 0 });
    for (const f of Object.values(SESSION_FILES)) assert.deepEqual([by[f]!.mode, by[f]!.uid, by[f]!.gid], [0o600, 0, 0], f);
    assert.equal(by[SESSION_FILES.key]!.content, 'KEY');
    assert.deepEqual([by[HOST_PROXY_TOKEN_FILE]!.mode, by[HOST_PROXY_TOKEN_FILE]!.uid, by[HOST_PROXY_TOKEN_FILE]!.gid], [0o400, AGENT_UID, AGENT_UID]);
    const { hostProxyToken: _, ...noProxy } = files;
    assert.ok(!sessionArchiveEntries(noProxy).some((e) => e.path.includes('hostproxy')), 'no token without the host proxy');
  });

  test('packed as a tar whose headers carry exactly those owners and modes', async () => {
    const tar = await packArchive(sessionArchiveEntries(files), new Date('2025-01-01T00:00:00Z'));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const extract = (require('tar-stream') as { extract: () => NodeJS.WritableStream & { on(e: 'entry', f: (h: { name: string; type: string; mode: number; uid: number; gid: number }, s: NodeJS.ReadableStream, next: () => void) => void): void; on(e: 'finish', f: () => void): void } }).extract();
    const seen: { name: string; type: string; mode: number; uid: number; gid: number; body: string }[] = [];
    await new Promise<void>((resolve, reject) => {
      extract.on('entry', (h, stream, next) => {
        let body = '';
        stream.on('data', (c: Buffer) => (body += c.toString('utf8')));
        stream.on('end', () => {
          seen.push({ name: h.name, type: h.type, mode: h.mode, uid: h.uid, gid: h.gid, body });
          next();
        });
      });
      extract.on('finish', resolve);
      (extract as unknown as NodeJS.EventEmitter).on('error', reject);
      extract.end(tar);
    });
    assert.deepEqual(
      seen.map((e) => [e.name, e.type, e.mode.toString(8), e.uid, e.gid]),
      [
        ['run/clawker', 'directory', '755', 0, 0],
        ['run/clawker/session', 'directory', '700', 0, 0],
        ['run/clawker/session/ca.pem', 'file', '600', 0, 0],
        ['run/clawker/session/agentd.pem', 'file', '600', 0, 0],
        ['run/clawker/session/agentd-key.pem', 'file', '600', 0, 0],
        ['run/clawker/hostproxy', 'directory', '755', 0, 0],
        ['run/clawker/hostproxy/token', 'file', '400', 1001, 1001],
      ],
    );
    assert.equal(seen.find((e) => e.name.endsWith('token'))!.body, 'f'.repeat(64));
  });
});
