/**
 * The firewall as a normal user (issue 14): the journey user the test bed provisions (UID 1000, in
 * the docker group, no sudo) runs every CLI step itself, with a data dir of its own that does not
 * exist yet. Root only prepares the images beforehand; a step that needed root fails here (EACCES on
 * a root-owned file or socket), which is what these tests were missing while everything ran as root.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { stackNames } from '../../src/core/stack/stackNames';
import { stopHostProxy } from '../../src/platform/hostProxyLauncher';
import { ensureEnvoyStandinImage } from './internet';
import { ensureStackImages } from './stackImages';
import { BASE_IMAGE, BPFFS_DIR, CLI_BUNDLE, readControlPlaneFile, removeCgroupDirs, removeStackVolumes, requireTestbed, ROOT, run, runOk, testStackEnv } from './testbed';

const JOURNEY_UID = 1000;
const names = stackNames(`clawker-e2e-user-${process.pid}`);
const pinDir = join(BPFFS_DIR, names.prefix);
// The user's own folder; the data dir inside it does not exist until the CLI makes it.
const home = mkdtempSync(join(tmpdir(), 'clawker-e2e-user-'));
const dataDir = join(home, 'data');
const project = join(home, 'project');
const AGENT_IMAGE = `clawker-e2e/agent-user:${process.pid}`;
let user = '';
let images: { coredns: string; controlplane: string; envoy: string };

interface AsUser {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The CLI bundle run by the journey user (runuser: its uid, gid and groups), with a clean environment. */
function asUser(args: readonly string[], timeoutMs = 180_000): Promise<AsUser> {
  const env = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    // What this machine's users have in their environment to reach the network (its CA bundle, a proxy).
    ...Object.fromEntries(['NODE_EXTRA_CA_CERTS', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy'].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : []))),
    ...testStackEnv({ dataDir, stack: names.prefix, pinDir, settings: join(home, 'settings.yaml'), images }),
    CLAWKER_DRAIN_AFTER_MS: '600000',
    CLAWKER_BASE_IMAGE: BASE_IMAGE,
    CLAWKER_AGENT_IMAGE: AGENT_IMAGE,
  };
  const argv = ['-u', user, '--', '/usr/bin/env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, CLI_BUNDLE, ...args];
  return new Promise((resolve) =>
    execFile('runuser', argv, { cwd: project, timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr })),
  );
}

async function asUserOk(...args: string[]): Promise<AsUser> {
  const r = await asUser(args);
  assert.equal(r.code, 0, `clawker ${args.join(' ')} as ${user} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Every file and directory under `dir`, with its owner. */
function owners(dir: string): { path: string; uid: number }[] {
  const found: { path: string; uid: number }[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      const st = lstatSync(path);
      found.push({ path, uid: st.uid });
      if (st.isDirectory()) walk(path);
    }
  };
  walk(dir);
  return found;
}

describe(`the firewall as a user in the docker group (UID ${JOURNEY_UID}, no root)`, { timeout: 600_000 }, () => {
  before(async () => {
    await requireTestbed();
    const entry = (await runOk('getent', ['passwd', String(JOURNEY_UID)])).trim();
    user = entry.split(':')[0]!;
    const groups = (await runOk('id', ['-nG', user])).trim().split(/\s+/);
    assert.ok(groups.includes('docker'), `the journey user ${user} is in the docker group (provision.sh adds it): ${groups.join(' ')}`);
    chownSync(home, JOURNEY_UID, JOURNEY_UID);
    // The user's project, made by the user.
    await runOk('runuser', ['-u', user, '--', 'mkdir', '-m', '0755', project]);
    await runOk('runuser', ['-u', user, '--', 'sh', '-c', `printf 'name: e2e-user\\n' > ${project}/.clawker.yaml`]);
    await runOk('node', [join(ROOT, 'scripts', 'build.mjs')], 120_000);
    const [stack, envoy] = await Promise.all([ensureStackImages(), ensureEnvoyStandinImage()]);
    images = { ...stack, envoy };
  });

  after(async () => {
    if (images) {
      await asUser(['rm', '--force', '--agent', 'dev']);
      await asUser(['firewall', 'down']);
    }
    await stopHostProxy(dataDir).catch(() => false); // a failed step may leave it holding the gateway address
    await run('docker', ['rm', '-f', `${names.prefix}.e2e-user.dev`]);
    for (const tag of (await run('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}', 'clawker-e2e/agent-user'])).stdout.split('\n').filter((t) => t.includes(String(process.pid)))) await run('docker', ['rmi', '-f', tag]);
    for (const n of [names.controlplane, names.envoy, names.coredns]) await run('docker', ['rm', '-f', n]);
    await run('docker', ['network', 'rm', names.network]);
    await removeStackVolumes(names);
    rmSync(pinDir, { recursive: true, force: true });
    await removeCgroupDirs(names.agentsCgroup);
    rmSync(home, { recursive: true, force: true });
  });

  test('the steps run as that user, not as root', async () => {
    const id = await new Promise<string>((resolve, reject) => execFile('runuser', ['-u', user, '--', 'id', '-u'], (e, out) => (e ? reject(e) : resolve(out.trim()))));
    assert.equal(id, String(JOURNEY_UID));
  });

  test('firewall up: the data dir is created, the user\'s (0700), and nothing in it belongs to anyone else', async () => {
    const up = await asUserOk('firewall', 'up', '--json');
    const status = JSON.parse(up.stdout) as Status;
    assert.ok(['ready', 'idle'].includes(status.phase), status.phase);
    const st = lstatSync(dataDir);
    assert.equal(st.uid, JOURNEY_UID);
    assert.equal(st.mode & 0o777, 0o700);
    const foreign = owners(dataDir).filter((o) => o.uid !== JOURNEY_UID);
    assert.deepEqual(foreign, [], 'every file in the data dir is the user\'s');
    assert.ok(owners(dataDir).some((o) => o.path.endsWith(join('firewall', 'ca', 'ca-key.pem'))), 'the CA is in the user\'s data dir');
  });

  test('firewall status reaches the control plane (through the Docker API, no socket file to own)', async () => {
    const status = JSON.parse((await asUserOk('firewall', 'status', '--json')).stdout) as Status;
    assert.equal(status.network.name, names.network);
    assert.ok(status.components.every((c) => c.name !== 'controlplane' || c.healthy), JSON.stringify(status.components));
  });

  test('firewall add applies to the running firewall: the control plane holds the user\'s store', async () => {
    const add = await asUserOk('firewall', 'add', 'user-added.test');
    assert.match(add.stderr, /applied to the running firewall/, add.stderr);
    const copy = await readControlPlaneFile(names.controlplane, 'firewall/rules.json');
    assert.match(copy ?? '', /user-added\.test/, "the control plane's copy has the rule");
    const list = await asUserOk('firewall', 'list', '--json');
    assert.match(list.stdout, /user-added\.test/);
    assert.deepEqual(owners(dataDir).filter((o) => o.uid !== JOURNEY_UID), []);
  });

  test("run: the agent runs as the user's UID, and what it writes in the project is the user's", { timeout: 900_000 }, async () => {
    const r = await asUser(['run', '-d', '--agent', 'dev', '--', 'sh', '-c', 'id -u > /workspace/agent-uid; echo made > /workspace/made-by-agent; exec sleep 100000'], 900_000);
    assert.equal(r.code, 0, `clawker run as ${user} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    const made = join(project, 'made-by-agent');
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !owners(project).some((o) => o.path === made)) await new Promise((res) => setTimeout(res, 250));
    const files = owners(project);
    assert.ok(files.some((o) => o.path === made), `the agent wrote ${made}: ${JSON.stringify(files)}`);
    assert.deepEqual(files.filter((o) => o.uid !== JOURNEY_UID), [], 'every file the agent made is the user\'s on the host');
    const uid = (await runOk('runuser', ['-u', user, '--', 'cat', join(project, 'agent-uid')])).trim();
    assert.equal(uid, String(JOURNEY_UID), "the agent's command runs with the user's UID");
    await asUserOk('rm', '--force', '--agent', 'dev');
  });

  test("the host proxy run started is the user's process; host-proxy status shows it and host-proxy stop ends it", async () => {
    const status = JSON.parse((await asUserOk('host-proxy', 'status', '--json')).stdout) as { running: boolean; pid: number; url: string; stack: string; dataDir: string };
    assert.equal(status.running, true, JSON.stringify(status));
    assert.equal(status.stack, names.prefix);
    assert.equal(status.dataDir, dataDir);
    assert.equal(lstatSync(`/proc/${status.pid}`).uid, JOURNEY_UID, 'the daemon runs as the user');
    assert.match((await asUserOk('host-proxy', 'stop')).stdout, /^host proxy: stopped$/m);
    assert.equal(existsSync(`/proc/${status.pid}`), false, 'the daemon is gone');
    assert.match((await asUserOk('host-proxy', 'status')).stdout, /^host proxy: not running \(data dir /m);
    assert.match((await asUserOk('host-proxy', 'stop')).stdout, /^host proxy: none was running/m);
  });

  test('firewall down stops the stack', async () => {
    await asUserOk('firewall', 'down');
    const left = (await runOk('docker', ['ps', '-q', '--filter', `label=dev.clawker.stack=${names.prefix}`])).trim();
    assert.equal(left, '', 'no stack container left running');
  });
});
