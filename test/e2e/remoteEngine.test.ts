/**
 * The firewall and an agent on another machine's engine (issue 14, our stand-in for Docker Desktop
 * or a remote host): dockerd in a container with its own file system, cgroup namespace, bpffs and
 * network, its API on TCP with mutual TLS, its host-gateway this machine (remoteEngine.ts). Of this
 * machine it sees only the project folder, shared at the same path the way Docker Desktop shares
 * the user's home (and the images copied in: the test bed's base, the Envoy stand-in, the agent
 * image; `firewall up` builds the stack's own images there from this checkout's files) (world-writable here, as Desktop's file sharing maps owners). The CLI bundle
 * reaches it once through DOCKER_HOST and once through a docker context; the stack's files cross
 * through Docker only, agents reach the host proxy at host.docker.internal, and no container of the
 * stack or the agent mounts a path of this machine but the project folder.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Docker from 'dockerode';
import { agentUserFor } from '../../src/core/agents/agentUser';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { stackNames } from '../../src/core/stack/stackNames';
import { ensureAgentImage } from '../../src/platform/docker/agentImage';
import { stopHostProxy } from '../../src/platform/hostProxyLauncher';
import { ensurePythonImage, PY_IMAGE } from './datapath-testbed';
import { STANDIN_PY } from './datapath-scripts';
import { ensureEnvoyStandinImage } from './internet';
import { copyImages, ensureDindImage, type RemoteEngine, runWithEnv, startRemoteEngine } from './remoteEngine';
import { ensureStackImages } from './stackImages';
import { BASE_IMAGE, CLI_BUNDLE, pollUntil, requireTestbed, ROOT, run, runOk, testStackEnv, uniqueName } from './testbed';

const names = stackNames(`clawker-e2e-rem-${process.pid}`);
const work = mkdtempSync(join(tmpdir(), 'clawker-e2e-remote-'));
const dataDir = join(work, 'data');
const home = join(work, 'home');
const project = join(work, 'project');
const contextConfig = join(work, 'docker-config');
const settings = join(work, 'settings.yaml');
const AGENT_IMAGE = `clawker-e2e/agent-remote:${process.pid}`;
const AGENT = `${names.prefix}.remote.dev`;
/** The test's resolver on the stack's network (CoreDNS's upstream), and what it answers. */
const RESOLVER_HOST = 50;
const ANSWER = '203.0.113.10';
const PASSWORD = 'remote-PASS-7';

let engine: RemoteEngine;
let images: { coredns: string; controlplane: string; envoy: string };
let status: Status;

function cliEnv(engineEnv: Record<string, string>): Record<string, string> {
  const keep = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !k.startsWith('DOCKER_')) as [string, string][]);
  return {
    ...keep,
    HOME: home, // the host proxy's git reads this user's credentials
    ...testStackEnv({ dataDir, stack: names.prefix, pinDir: `/sys/fs/bpf/${names.prefix}`, settings, images }),
    CLAWKER_BASE_IMAGE: BASE_IMAGE,
    CLAWKER_AGENT_IMAGE: AGENT_IMAGE,
    CLAWKER_DRAIN_AFTER_MS: '600000',
    ...engineEnv,
  };
}

/** The CLI bundle on the remote engine, through DOCKER_HOST (or `via` another environment: the docker context). */
async function cli(args: readonly string[], via?: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = cliEnv(via ?? engine.env);
    const { execFile } = require('node:child_process') as typeof import('node:child_process');
    execFile(process.execPath, [CLI_BUNDLE, ...args], { env, cwd: project, timeout: 600_000, maxBuffer: 32 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function cliOk(args: readonly string[], via?: Record<string, string>): Promise<string> {
  const r = await cli(args, via);
  assert.equal(r.code, 0, `clawker ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** `docker …` on the remote engine. */
const remote = (args: readonly string[], timeoutMs?: number) => runWithEnv('docker', args, engine.env, timeoutMs);
async function remoteOk(args: readonly string[], timeoutMs?: number): Promise<string> {
  const r = await remote(args, timeoutMs);
  assert.equal(r.code, 0, `docker ${args.join(' ')} on ${engine.host}: ${r.stderr}`);
  return r.stdout;
}
/** The Envoy stand-in's records of connections (its log on the remote engine). */
async function envoyConns(): Promise<Record<string, unknown>[]> {
  return (await remote(['logs', names.envoy])).stdout.split('\n').flatMap((l) => {
    try {
      const r = JSON.parse(l) as Record<string, unknown>;
      return r.kind === 'conn' ? [r] : [];
    } catch {
      return [];
    }
  });
}

/** A shell command in the agent (as its user), on the remote engine. */
const inAgent = (script: string) => remote(['exec', AGENT, 'sh', '-c', script], 60_000);

const until = <T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> => pollUntil(what, fn, ms, 200);

describe('the firewall and an agent on a remote engine (TCP with TLS; only the project folder shared)', { timeout: 1_500_000 }, () => {
  before(async () => {
    await requireTestbed();
    mkdirSync(dataDir, { mode: 0o700 });
    mkdirSync(home);
    mkdirSync(project);
    chmodSync(project, 0o777);
    writeFileSync(join(project, '.clawker.yaml'), 'name: remote\n');
    writeFileSync(join(home, '.gitconfig'), '[credential]\n\thelper = store\n');
    writeFileSync(join(home, '.git-credentials'), `https://octo:${PASSWORD}@git.test\n`, { mode: 0o600 });
    await runOk('node', [join(ROOT, 'scripts', 'build.mjs')], 120_000);
    const [stack, envoy] = await Promise.all([ensureStackImages(), ensureEnvoyStandinImage(), ensurePythonImage(), ensureDindImage()]);
    images = { ...stack, envoy };
    // The agent image, built here with this run's CA for the user a remote engine gets (the contract's
    // 1001), then carried over: building it on the remote engine would download it all again.
    await ensureAgentImage(new Docker({ socketPath: '/var/run/docker.sock' }), { dataDir, tag: AGENT_IMAGE, baseImage: BASE_IMAGE, user: agentUserFor('remote', undefined) });
    engine = await startRemoteEngine(uniqueName('dind'), [project]);
    // The stack's own images are not carried over: `firewall up` builds them there, through the API.
    await copyImages(engine, [BASE_IMAGE, images.envoy, PY_IMAGE, AGENT_IMAGE]);
  });

  after(async () => {
    if (engine) {
      await cli(['rm', '--force', '--agent', 'dev']).catch(() => undefined);
      await cli(['firewall', 'down']).catch(() => undefined);
      await engine.stop();
    }
    await stopHostProxy(dataDir).catch(() => false);
    await run('docker', ['rmi', '-f', AGENT_IMAGE]);
    rmSync(work, { recursive: true, force: true });
  });

  test('firewall up through DOCKER_HOST=tcp:// with TLS: the stack runs healthy on that engine, nothing of it on this one', async () => {
    const subnetPrefix = '192.168.215'; // a fresh engine's first network: the launcher's default
    writeFileSync(settings, `firewall:\n  upstream_dns:\n    - ${subnetPrefix}.${RESOLVER_HOST}\n`);
    const up = await cli(['firewall', 'up', '--json']);
    assert.equal(up.code, 0, `firewall up exited ${up.code}:\n${up.stdout}\n${up.stderr}`);
    for (const image of [images.controlplane, images.coredns]) {
      assert.match(up.stderr, new RegExp(`Building ${image.replace(/[.:/]/g, '\\$&')} for linux/(amd64|arm64) \\(first build on this engine\\)`), up.stderr);
    }
    status = JSON.parse(up.stdout) as Status;
    assert.equal(status.phase, 'ready', JSON.stringify(status));
    assert.ok(status.components.every((c) => c.healthy), JSON.stringify(status.components));
    assert.equal(status.network.subnet, `${subnetPrefix}.0/24`, 'the subnet the settings were written for');
    assert.equal(status.network.hostGateway, engine.hostGatewayIp, "host.docker.internal is this machine's address on the engine's network");
    const there = (await remoteOk(['ps', '--format', '{{.Names}}', '--filter', `label=dev.clawker.stack=${names.prefix}`])).split('\n').filter(Boolean).sort();
    assert.deepEqual(there, [names.controlplane, names.coredns, names.envoy].sort());
    const here = (await runOk('docker', ['ps', '-a', '--format', '{{.Names}}', '--filter', `label=dev.clawker.stack=${names.prefix}`])).trim();
    assert.equal(here, '', 'nothing of the stack on this machine\'s engine');
  });

  test('the same engine through a docker context (DOCKER_CONFIG, no DOCKER_HOST): status reaches its control plane', async () => {
    mkdirSync(contextConfig);
    const tls = `ca=${join(engine.certPath, 'ca.pem')},cert=${join(engine.certPath, 'cert.pem')},key=${join(engine.certPath, 'key.pem')}`;
    await runOk('docker', ['--config', contextConfig, 'context', 'create', 'remote-e2e', '--docker', `host=${engine.host},${tls}`]);
    await runOk('docker', ['--config', contextConfig, 'context', 'use', 'remote-e2e']);
    const viaContext = { DOCKER_CONFIG: contextConfig };
    const s = JSON.parse(await cliOk(['firewall', 'status', '--json'], viaContext)) as Status;
    assert.equal(s.network.name, names.network);
    assert.equal(s.phase, 'ready');
  });

  test("run: the agent runs on the remote engine as the contract's user, writes in the shared folder; host.docker.internal is this machine, and git gets the host's credentials through the host proxy", { timeout: 600_000 }, async () => {
    const script = [
      'echo "uid=$(id -u)"',
      'echo "hosts=$(getent hosts host.docker.internal | cut -d" " -f1)"',
      'echo "proxy=$CLAWKER_HOST_PROXY"',
      'echo made > /workspace/made-remotely',
      'printf "protocol=https\\nhost=git.test\\n\\n" | git credential fill | sed "s/^/fill: /"',
      'exec sleep 100000',
    ].join('; ');
    await cliOk(['run', '-d', '--agent', 'dev', '--', 'sh', '-c', script]);
    const logs = await until('the agent\'s first lines', async () => {
      const out = (await remote(['logs', AGENT])).stdout;
      return /^fill: password=/m.test(out) || /fill failed|fatal/.test(out) ? out : undefined;
    }, 60_000);
    assert.match(logs, /^uid=1001$/m, logs);
    assert.match(logs, new RegExp(`^hosts=${engine.hostGatewayIp.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(logs, /^proxy=http:\/\/host\.docker\.internal:18374$/m);
    assert.match(logs, /^fill: username=octo$/m);
    assert.match(logs, new RegExp(`^fill: password=${PASSWORD}$`, 'm'));
    assert.equal(readFileSync(join(project, 'made-remotely'), 'utf8'), 'made\n', 'written on the remote engine, seen here');
    const agents = (JSON.parse(await cliOk(['firewall', 'status', '--json'])) as Status).agents;
    assert.ok(agents.some((a) => a.containerName === AGENT && a.state === 'enrolled'), JSON.stringify(agents));
  });

  test('a blocked request shows in firewall events; firewall add lets it through to the proxy', { timeout: 300_000 }, async () => {
    // The "internet": a resolver on the stack's network answering every name with ANSWER (CoreDNS's upstream).
    const resolverIp = status.network.subnet.replace(/0\/24$/, String(RESOLVER_HOST));
    const scripts = join(project, '.e2e');
    mkdirSync(scripts, { recursive: true });
    writeFileSync(join(scripts, 'standin.py'), STANDIN_PY);
    await remoteOk(['run', '-d', '--name', `${names.prefix}-resolver`, '--network', names.network, '--ip', resolverIp, '-v', `${scripts}:/e2e:ro`, PY_IMAGE, 'python3', '-u', '/e2e/standin.py', '--banner', 'dns', '--dns', '53', '--answer', ANSWER]);
    try {
      const blocked = await inAgent('getent hosts blocked.test; echo "exit=$?"');
      assert.match(blocked.stdout, /^exit=2$/m, `not resolved: ${blocked.stdout}${blocked.stderr}`);
      const events = await until('the DNS refusal in firewall events', async () => {
        const lines = (await cliOk(['firewall', 'events', '--json', '--tail', '2000'])).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
        const hit = lines.filter((e) => e.source === 'dns' && e.verdict === 'denied' && JSON.stringify(e).includes('blocked.test'));
        return hit.length ? hit : undefined;
      });
      assert.equal(events[0]!.agent, 'dev', JSON.stringify(events[0]));
      // Its address given by hand: the proxy resets it (no filter chain serves the name).
      await inAgent(`curl -sk -m 5 -o /dev/null --resolve blocked.test:443:${ANSWER} https://blocked.test/ || true`);
      const refused = await until('the proxy refused blocked.test', async () => (await envoyConns()).find((r) => r.sni === 'blocked.test'));
      assert.equal(refused.verdict, 'reset', JSON.stringify(refused));

      await cliOk(['firewall', 'add', 'blocked.test']);
      const resolved = await until('blocked.test resolved after the add', async () => {
        const r = await inAgent('getent hosts blocked.test');
        return r.code === 0 ? r.stdout : undefined;
      });
      assert.match(resolved, new RegExp(`^${ANSWER.replace(/\./g, '\\.')}\\s+blocked\\.test`, 'm'));
      await inAgent('curl -sk -m 5 -o /dev/null https://blocked.test/ || true');
      const conn = await until('the proxy accepted blocked.test', async () => (await envoyConns()).find((r) => r.sni === 'blocked.test' && r.verdict !== 'reset'));
      assert.deepEqual([conn.verdict, conn.chain, conn.host], ['accepted', 'tls:blocked.test:443', 'blocked.test'], JSON.stringify(conn));
    } finally {
      await remote(['rm', '-f', `${names.prefix}-resolver`]);
    }
  });

  test('no container on the remote engine mounts a path of this machine but the shared project folder', async () => {
    const ids = (await remoteOk(['ps', '-aq'])).split('\n').filter(Boolean);
    assert.ok(ids.length >= 4, 'the stack and the agent');
    const inspected = JSON.parse(await remoteOk(['inspect', ...ids])) as { Name: string; Mounts: { Type: string; Source: string; Destination: string }[] }[];
    // What a bind can name on that engine: its own kernel files and socket, or the shared folder.
    const engineOwn = new Set(['/sys/fs/bpf', '/sys/fs/cgroup', '/var/run/docker.sock']);
    for (const c of inspected) {
      for (const m of c.Mounts.filter((x) => x.Type === 'bind')) {
        assert.ok(engineOwn.has(m.Source) || m.Source === project || m.Source.startsWith(`${project}/`), `${c.Name} binds ${m.Source} → ${m.Destination}`);
      }
    }
    // And that engine's own view: of this machine only the project folder (and its TLS material).
    const outer = JSON.parse(await runOk('docker', ['inspect', engine.container])) as { Mounts: { Type: string; Source: string }[] }[];
    const binds = outer[0]!.Mounts.filter((m) => m.Type === 'bind').map((m) => m.Source).sort();
    assert.deepEqual(binds.filter((s) => s !== project), [engine.serverCertDir]);
  });

  test('firewall down locks the agent down: nothing leaves it, not even DNS', async () => {
    const down = await cliOk(['firewall', 'down']);
    assert.match(down, /^locked down \(no egress until clawker firewall up\): dev$/m, down);
    const r = await inAgent('getent hosts allowed.test; echo "dns=$?"; curl -sS -m 3 -o /dev/null https://203.0.113.10/ 2>&1; echo "curl=$?"');
    assert.match(r.stdout, /^dns=2$/m, r.stdout);
    assert.doesNotMatch(r.stdout, /^curl=0$/m, r.stdout);
  });
});
