// Where Clawker runs and the answer where it does not (issue 14, item 7): each refusal's message,
// each engine kind, and that the CLI's paths use them (firewall up through stackUp, every verb
// through resolveEngineFor).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type Docker from 'dockerode';
import { engineSupport, engineUnreachable, hostSupport, inContainerWorkspace, workspaceUnreachable } from '../../src/core/engine/engineSupport';
import { resolveEngine } from '../../src/core/engine/engineResolution';
import { AgentLifecycleError, dockerUnreachable } from '../../src/platform/docker/agentContainers';
import { checkEngine, EngineUnsupportedError } from '../../src/platform/docker/engineCheck';
import { resolveEngineFor } from '../../src/platform/docker/engineClient';
import { StackError, stackUp } from '../../src/platform/docker/stackLauncher';
import { stackNames } from '../../src/core/stack/stackNames';

const DOCKER_VERSION = { ApiVersion: '1.41', Components: [{ Name: 'Engine' }, { Name: 'containerd' }], Platform: { Name: 'Docker Engine - Community' } };
const LINUX_INFO = { OperatingSystem: 'Debian GNU/Linux 12 (bookworm)', Name: 'desk', OSType: 'linux', SecurityOptions: ['name=seccomp,profile=default', 'name=cgroupns'], CgroupDriver: 'systemd' };
const facts = (info: Record<string, unknown> = {}, version: Record<string, unknown> = {}, more: Partial<Parameters<typeof engineSupport>[0]> = {}) =>
  engineSupport({ version: { ...DOCKER_VERSION, ...version }, info: { ...LINUX_INFO, ...info }, hostPlatform: 'linux', unixSocket: true, ...more });

describe('the machine', () => {
  test('Windows without WSL: open the folder in WSL', () => {
    const v = hostSupport({ platform: 'win32', env: {} });
    assert.equal(v.ok, false);
    assert.equal((v as { what: string }).what, 'Clawker does not run on Windows directly: its firewall needs a Linux kernel next to the Docker engine');
    assert.match((v as { next: string }).next, /^open this folder in WSL \(Command Palette: "WSL: Reopen Folder in WSL"\)/);
  });

  test('Linux (WSL included: the extension host runs there) and macOS are fine; other systems are named', () => {
    assert.deepEqual(hostSupport({ platform: 'linux', remoteName: 'wsl', env: {} }), { ok: true, kind: 'host' });
    assert.deepEqual(hostSupport({ platform: 'darwin', env: {} }), { ok: true, kind: 'host' });
    assert.deepEqual(hostSupport({ platform: 'freebsd', env: {} }), { ok: false, what: 'Clawker does not run on freebsd', next: 'use Linux, macOS or Windows with WSL' });
  });

  test('a dev container or Codespace is recognised by VS Code remote name or by its environment', () => {
    assert.equal(inContainerWorkspace({ platform: 'linux', remoteName: 'codespaces', env: {} }), 'codespaces');
    assert.equal(inContainerWorkspace({ platform: 'linux', env: { CODESPACES: 'true' } }), 'codespaces');
    assert.equal(inContainerWorkspace({ platform: 'linux', remoteName: 'dev-container', env: {} }), 'dev-container');
    assert.equal(inContainerWorkspace({ platform: 'linux', remoteName: 'attached-container', env: {} }), 'dev-container');
    assert.equal(inContainerWorkspace({ platform: 'linux', env: { REMOTE_CONTAINERS: 'true' } }), 'dev-container');
    assert.equal(inContainerWorkspace({ platform: 'linux', remoteName: 'ssh-remote', env: { CODESPACES: 'false' } }), undefined);
  });

  test('the CLI refuses Windows before any Docker call, naming WSL', () => {
    assert.throws(() => resolveEngineFor({}, undefined, 'win32'), (e: Error & { next?: string }) => /Windows directly/.test(e.message) && /WSL/.test(e.next ?? ''));
  });
});

describe('the engine', () => {
  test('Podman, by its component or platform name', () => {
    for (const v of [facts({}, { Components: [{ Name: 'Podman Engine' }] }), facts({}, { Components: [], Platform: { Name: 'linux/amd64/podman' } })]) {
      assert.equal(v.ok, false);
      assert.match((v as { what: string }).what, /^this Docker API is served by Podman, which Clawker does not support yet/);
      assert.match((v as { next: string }).next, /^use Docker Engine \(rootful\), Docker Desktop, Colima or OrbStack/);
    }
  });

  test('rootless Docker, by its security option', () => {
    const v = facts({ SecurityOptions: ['name=seccomp,profile=default', 'name=rootless', 'name=cgroupns'] });
    assert.equal(v.ok, false);
    assert.match((v as { what: string }).what, /runs rootless, which Clawker does not support yet: the firewall's eBPF programs need a rootful engine/);
    assert.equal(facts({ SecurityOptions: ['name=seccomp,profile=rootlessish'] }).ok, true, 'only the rootless option itself');
  });

  test('Windows containers', () => {
    assert.deepEqual(facts({ OSType: 'windows' }), { ok: false, what: 'this Docker engine runs windows containers; Clawker needs Linux containers', next: 'switch Docker Desktop to Linux containers' });
  });

  test('kinds: Docker Desktop, OrbStack, Colima, this Linux machine, anything else remote', () => {
    assert.deepEqual(facts({ OperatingSystem: 'Docker Desktop' }, {}, { hostPlatform: 'darwin' }), { ok: true, kind: 'docker-desktop' });
    assert.deepEqual(facts({ OperatingSystem: 'Docker Desktop' }), { ok: true, kind: 'docker-desktop' }, 'Docker Desktop for Linux runs a VM too');
    assert.deepEqual(facts({ OperatingSystem: 'OrbStack' }, {}, { hostPlatform: 'darwin' }), { ok: true, kind: 'orbstack' });
    assert.deepEqual(facts({ OperatingSystem: 'Ubuntu 24.04 LTS', Name: 'colima' }, {}, { hostPlatform: 'darwin' }), { ok: true, kind: 'colima' });
    assert.deepEqual(facts({ Name: 'colima-work' }, {}, { hostPlatform: 'darwin' }), { ok: true, kind: 'colima' });
    assert.deepEqual(facts(), { ok: true, kind: 'linux-local' });
    assert.deepEqual(facts({}, {}, { unixSocket: false }), { ok: true, kind: 'remote' }, 'tcp or ssh');
    assert.deepEqual(facts({}, {}, { hostPlatform: 'darwin' }), { ok: true, kind: 'remote' }, 'a socket on a Mac leads into a VM');
    assert.deepEqual(facts({}, {}, { workspace: 'dev-container' }), { ok: true, kind: 'remote' }, "docker-outside-of-docker: the host's engine, not this container's files");
  });

  test('checkEngine asks version and info, and throws the refusal naming the engine', async () => {
    const engine = resolveEngine({ env: { DOCKER_HOST: 'unix:///run/podman/podman.sock' }, context: () => ({ found: false }), platform: 'linux' });
    const podman = { version: async () => ({ ...DOCKER_VERSION, Components: [{ Name: 'Podman Engine' }] }), info: async () => LINUX_INFO } as unknown as Pick<Docker, 'version' | 'info'>;
    await assert.rejects(checkEngine(podman, engine, 'linux'), (e: unknown) => e instanceof EngineUnsupportedError && e.message.startsWith('the Docker engine at unix:///run/podman/podman.sock (DOCKER_HOST): this Docker API is served by Podman'));
    const docker = { version: async () => DOCKER_VERSION, info: async () => LINUX_INFO } as unknown as Pick<Docker, 'version' | 'info'>;
    assert.deepEqual(await checkEngine(docker, engine, 'linux'), { kind: 'linux-local', apiVersion: '1.41', cgroupDriver: 'systemd' });
  });

  test('firewall up stops at an unsupported engine before it touches the network', async () => {
    const calls: string[] = [];
    const docker = new Proxy(
      {
        version: async () => (calls.push('version'), DOCKER_VERSION),
        info: async () => (calls.push('info'), { ...LINUX_INFO, SecurityOptions: ['name=rootless'] }),
      },
      { get: (t, k) => (k in t ? t[k as keyof typeof t] : () => calls.push(String(k))) },
    ) as unknown as Docker;
    await assert.rejects(
      stackUp(docker, { dataDir: '/nonexistent', names: stackNames('clawker-t'), images: { envoy: 'e', coredns: 'c', controlplane: 'p' }, upstreams: ['1.1.1.1'], pinDir: '/p', progress: () => undefined }),
      (e: unknown) => e instanceof StackError && /rootless/.test(e.message) && /rootful/.test(e.next),
    );
    assert.deepEqual(calls.sort(), ['info', 'version']);
  });
});

describe('when the engine cannot be reached', () => {
  const where = 'the Docker engine at unix:///var/run/docker.sock (the default)';
  test('the plain case, permissions, and inside a dev container or Codespace', () => {
    assert.deepEqual(engineUnreachable(where, 'ECONNREFUSED', { env: {} }), {
      what: `cannot reach ${where} (ECONNREFUSED)`,
      next: 'start the Docker engine (sudo systemctl start docker, or open Docker Desktop), or point DOCKER_HOST, settings.yaml docker.host or the docker context at it',
    });
    assert.match(engineUnreachable(where, 'EACCES', { env: {} }).next, /usermod -aG docker/);
    const dev = engineUnreachable(where, 'ENOENT', { env: { REMOTE_CONTAINERS: 'true' } });
    assert.equal(dev.what, `cannot reach ${where} (ENOENT): this dev container cannot reach a Docker engine`);
    assert.match(dev.next, /docker-outside-of-docker/);
    const cs = engineUnreachable(where, 'ENOENT', { env: {}, remoteName: 'codespaces' });
    assert.match(cs.what, /this Codespace has no Docker engine Clawker can use/);
  });

  test("the agent verbs' error: a refused engine, an unreachable one, anything else left alone", () => {
    const engine = resolveEngine({ env: {}, context: () => ({ found: false }), platform: 'linux' });
    const refused = dockerUnreachable(new EngineUnsupportedError('podman', 'use docker'), engine, {});
    assert.ok(refused instanceof AgentLifecycleError);
    assert.deepEqual([refused.message, refused.component, refused.next], ['podman', 'docker', 'use docker']);
    assert.match(dockerUnreachable(Object.assign(new Error('x'), { code: 'EHOSTUNREACH' }), engine, {})!.message, /^cannot reach the Docker engine at unix:\/\/\/var\/run\/docker\.sock \(the default\) \(EHOSTUNREACH\)$/);
    assert.match(dockerUnreachable(new Error('connect ENOENT /var/run/docker.sock'), engine, { CODESPACES: 'true' })!.message, /\(ENOENT\): this Codespace/);
    assert.equal(dockerUnreachable(Object.assign(new Error('no such image'), { statusCode: 404 }), engine, {}), undefined);
  });
});

describe('an engine on another machine cannot mount this machine\'s project folder', () => {
  test('ssh: refused naming the engine, the host and the folder, with where to run instead; unix and tcp are trusted to share', () => {
    const ssh = workspaceUnreachable({ kind: 'ssh', host: 'build.example', port: 22, user: 'ada' }, 'the Docker engine at ssh://ada@build.example (DOCKER_HOST)', '/home/ada/web');
    assert.deepEqual(ssh, {
      what: 'the Docker engine at ssh://ada@build.example (DOCKER_HOST) runs on build.example, which cannot see /home/ada/web on this machine, so the agent\'s workspace cannot be mounted',
      next: 'open the folder on build.example with VS Code Remote - SSH (Clawker then runs there, next to its engine), or use a Docker engine on this machine',
    });
    assert.equal(workspaceUnreachable({ kind: 'unix', path: '/var/run/docker.sock' }, 'x', '/w'), undefined);
    assert.equal(workspaceUnreachable({ kind: 'tcp', host: '10.0.0.5', port: 2376 }, 'x', '/w'), undefined);
  });
});
