/**
 * The non-root journey from the packaged extension (issue 14, "Must show"): the journey user the
 * test bed provisions (UID 1000, in the docker group, no sudo) unpacks the `.vsix` into its own
 * home, far from the checkout, and runs every CLI step through the launcher the extension puts on
 * its terminals' PATH (item 9): `clawker` on a PATH with no Node on it, running the bundled CLI on
 * the runtime the launcher names (a copy of this machine's Node standing in for VS Code's). From
 * there `firewall up` builds the stack's images on the engine from the package's files, `run` builds
 * the agent image and starts an agent in the user's project, a blocked name shows in `firewall
 * events`, `firewall add` lets it through, and `firewall down` locks the agent down.
 *
 * Root packages the extension beforehand (a build step of this checkout) and builds the test's
 * world (the "internet": a resolver on its own network and the route to it, iptables); no step of
 * the user's runs as root: each is `runuser -u <user>` with a clean environment, so one that needed
 * root fails here (EACCES on a root-owned file or socket, no permission to the engine).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { DEFAULT_STACK_IMAGES } from '../../src/core/stack/containerSpecs';
import { stackNames } from '../../src/core/stack/stackNames';
import { launcherScript } from '../../src/extension/terminalLauncherScript';
import { stopHostProxy } from '../../src/platform/hostProxyLauncher';
import { ensureEnvoyStandinImage, envoyRecords, TestInternet } from './internet';
import { BASE_IMAGE, BPFFS_DIR, readControlPlaneFile, removeCgroupDirs, pollUntil, removeStackVolumes, requireTestbed, ROOT, run, runOk } from './testbed';

const JOURNEY_UID = 1000;
const names = stackNames(`clawker-e2e-user-${process.pid}`);
const pinDir = join(BPFFS_DIR, names.prefix);
// The user's own folder (its HOME); the data dir inside it does not exist until the CLI makes it.
const home = mkdtempSync(join(tmpdir(), 'clawker-e2e-user-'));
const dataDir = join(home, 'data');
const project = join(home, 'project');
/** Where the user unpacks the .vsix (the `extension/` folder in it is what VS Code installs). */
const installed = join(home, 'vscode-extensions', 'clawker', 'extension');
/** The runtime the launcher names: a copy of this machine's Node, standing in for VS Code's own. */
const runtime = join(home, 'vscode-runtime', 'node');
/** The terminals' PATH: the launcher's folder, and git (the host proxy's credential helper runs it). */
const launcherDir = join(home, 'vscode-terminal-bin');
const toolsDir = join(home, 'tools');
const USER_PATH = `${launcherDir}:${toolsDir}`;
const AGENT_IMAGE = `clawker-e2e/agent-user:${process.pid}`;
const AGENT = `${names.prefix}.e2e-user.dev`;
const packageDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-vsix-'));
const vsix = join(packageDir, 'clawker.vsix');
const inet = new TestInternet();
const BLOCKED_HOST = 23;
let user = '';
let envoy = '';

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function execAs(argv: readonly string[], cwd: string, timeoutMs: number): Promise<Result> {
  return new Promise((resolve) =>
    execFile('runuser', ['-u', user, '--', ...argv], { cwd, timeout: timeoutMs, maxBuffer: 32 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

/** The user's environment in an editor terminal: nothing of root's, no Node on PATH. */
function userEnv(): Record<string, string> {
  return {
    PATH: USER_PATH,
    HOME: home,
    ...Object.fromEntries(['NODE_EXTRA_CA_CERTS', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy'].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : []))),
    // The stack's names, the test bed's base image (no registry) and the Envoy stand-in (Envoy
    // cannot run here); the control-plane and CoreDNS images are left to their defaults: built.
    CLAWKER_DATA_DIR: dataDir,
    CLAWKER_STACK: names.prefix,
    CLAWKER_PIN_DIR: pinDir,
    CLAWKER_SETTINGS: join(home, 'settings.yaml'),
    CLAWKER_ENVOY_IMAGE: envoy,
    CLAWKER_DRAIN_AFTER_MS: '600000',
    CLAWKER_BASE_IMAGE: BASE_IMAGE,
    CLAWKER_AGENT_IMAGE: AGENT_IMAGE,
  };
}

/** `clawker …` typed in the user's terminal: found on PATH (the launcher), run by the user. */
function clawker(args: readonly string[], timeoutMs = 300_000): Promise<Result> {
  const env = Object.entries(userEnv()).map(([k, v]) => `${k}=${v}`);
  return execAs(['/usr/bin/env', '-i', ...env, 'clawker', ...args], project, timeoutMs);
}

async function clawkerOk(...args: string[]): Promise<Result> {
  const r = await clawker(args);
  assert.equal(r.code, 0, `clawker ${args.join(' ')} as ${user} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** A command as the user, outside the CLI (docker, to look into the agent: the user is in the docker group). */
async function asUserOk(argv: readonly string[], timeoutMs = 120_000): Promise<string> {
  const r = await execAs(argv, home, timeoutMs);
  assert.equal(r.code, 0, `${argv.join(' ')} as ${user} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const inAgent = (script: string): Promise<Result> => execAs(['docker', 'exec', AGENT, 'sh', '-c', script], home, 60_000);

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

const until = <T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> => pollUntil(what, fn, ms, 250);

describe(`the journey of a user in the docker group (UID ${JOURNEY_UID}, no root) from the packaged .vsix, through the terminal launcher`, { timeout: 1_800_000 }, () => {
  before(async () => {
    await requireTestbed();
    const entry = (await runOk('getent', ['passwd', String(JOURNEY_UID)])).trim();
    user = entry.split(':')[0]!;
    const groups = (await runOk('id', ['-nG', user])).trim().split(/\s+/);
    assert.ok(groups.includes('docker'), `the journey user ${user} is in the docker group (provision.sh adds it): ${groups.join(' ')}`);
    chownSync(home, JOURNEY_UID, JOURNEY_UID);

    // Root's part: package this checkout (as `npm run package` does), then back to the development
    // build the other suites' images are hashed from; the test's world.
    await runOk(process.execPath, [join(ROOT, 'scripts', 'package.mjs'), '--out', packageDir], 1_200_000);
    await runOk(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], 120_000);
    chmodSync(packageDir, 0o755);
    chmodSync(vsix, 0o644);
    envoy = await ensureEnvoyStandinImage();
    await inet.start({ 'blocked.test': BLOCKED_HOST });

    // The user's part, as the user: the project, the unpacked extension, the editor's runtime and the
    // launcher the extension writes for its terminals (the extension's own text: terminalLauncherScript.ts).
    await asUserOk(['mkdir', '-m', '0755', '-p', project, dirname(installed), dirname(runtime), launcherDir, toolsDir]);
    await asUserOk(['sh', '-c', 'printf "name: e2e-user\\n" > "$1/.clawker.yaml"', 'sh', project]);
    await asUserOk(['unzip', '-q', vsix, 'extension/*', '-d', dirname(installed)]);
    await asUserOk(['cp', process.execPath, runtime]);
    await asUserOk(['sh', '-c', 'printf %s "$1" > "$2" && chmod 0755 "$2"', 'sh', launcherScript(runtime, join(installed, 'dist', 'cli.js')), join(launcherDir, 'clawker')]);
    await asUserOk(['ln', '-s', '/usr/bin/git', join(toolsDir, 'git')]);
    await asUserOk(['sh', '-c', 'printf "firewall:\\n  upstream_dns:\\n    - %s\\n" "$1" > "$2"', 'sh', inet.dnsIp, join(home, 'settings.yaml')]);
    // The default-tagged stack images are the ones `firewall up` builds: none there yet.
    await asUserOk(['docker', 'rmi', '-f', DEFAULT_STACK_IMAGES.controlplane, DEFAULT_STACK_IMAGES.coredns]);
  });

  after(async () => {
    if (user) {
      await clawker(['rm', '--force', '--agent', 'dev']);
      await clawker(['firewall', 'down']);
    }
    await stopHostProxy(dataDir).catch(() => false); // a failed step may leave it holding the gateway address
    await run('docker', ['rm', '-f', AGENT]);
    await run('docker', ['rmi', '-f', AGENT_IMAGE]);
    for (const n of [names.controlplane, names.envoy, names.coredns]) await run('docker', ['rm', '-f', n]);
    await run('docker', ['network', 'rm', names.network]);
    await removeStackVolumes(names);
    await inet.stop();
    rmSync(pinDir, { recursive: true, force: true });
    await removeCgroupDirs(names.agentsCgroup);
    rmSync(home, { recursive: true, force: true });
    rmSync(packageDir, { recursive: true, force: true });
  });

  test('the steps run as that user, from the unpacked package, with no Node on PATH and no checkout within reach', async () => {
    assert.equal((await asUserOk(['id', '-u'])).trim(), String(JOURNEY_UID));
    const noNode = await execAs(['/usr/bin/env', '-i', `PATH=${USER_PATH}`, '/bin/sh', '-c', 'command -v node'], home, 10_000);
    assert.notEqual(noNode.code, 0, `node is not on the terminal's PATH: ${noNode.stdout}`);
    assert.equal((await asUserOk(['/usr/bin/env', '-i', `PATH=${USER_PATH}`, '/bin/sh', '-c', 'command -v clawker'])).trim(), join(launcherDir, 'clawker'));
    // Nothing above the installed extension holds node_modules or the checkout.
    for (let dir = installed; dir !== dirname(dir); dir = dirname(dir)) {
      assert.equal(existsSync(join(dir, 'node_modules')), false, `${dir}/node_modules`);
      assert.ok(!`${ROOT}${sep}`.startsWith(`${dir}${sep}`) || dir === sep, `${dir} holds the checkout`);
    }
    assert.equal(existsSync(join(installed, 'node_modules')), false);
    assert.ok(existsSync(join(installed, 'dist', 'engine', 'linux-amd64', 'coredns')) || existsSync(join(installed, 'dist', 'engine', 'linux-arm64', 'coredns')), 'the package carries CoreDNS');
    const version = await clawkerOk('--version');
    assert.equal(version.stdout.trim(), (JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { version: string }).version, "the package's own CLI answers");
  });

  test("firewall up builds the stack's images on the engine from the package; the data dir is created, the user's (0700), nothing in it anyone else's", { timeout: 900_000 }, async () => {
    const up = await clawker(['firewall', 'up', '--json'], 900_000);
    assert.equal(up.code, 0, `firewall up as ${user} exited ${up.code}:\n${up.stdout}\n${up.stderr}`);
    for (const image of [DEFAULT_STACK_IMAGES.controlplane, DEFAULT_STACK_IMAGES.coredns]) {
      assert.match(up.stderr, new RegExp(`Building ${image.replace(/[.:]/g, '\\$&')} for linux/(amd64|arm64) \\(first build on this engine\\)`), up.stderr);
      assert.match(up.stderr, new RegExp(`Built ${image.replace(/[.:]/g, '\\$&')} \\(`), up.stderr);
      assert.match(await runOk('docker', ['image', 'inspect', '--format', '{{index .Config.Labels "dev.clawker.build.inputs"}}', image]), /^[0-9a-f]{64}\s*$/);
    }
    const status = JSON.parse(up.stdout) as Status;
    assert.ok(['ready', 'idle'].includes(status.phase), status.phase);
    assert.ok(status.components.every((c) => c.healthy), JSON.stringify(status.components));
    const st = lstatSync(dataDir);
    assert.equal(st.uid, JOURNEY_UID);
    assert.equal(st.mode & 0o777, 0o700);
    assert.deepEqual(owners(dataDir).filter((o) => o.uid !== JOURNEY_UID), [], "every file in the data dir is the user's");
    assert.ok(owners(dataDir).some((o) => o.path.endsWith(join('firewall', 'ca', 'ca-key.pem'))), "the CA is in the user's data dir");
    await inet.routeFrom(status.network.subnet);
    // A second `up` finds everything in place: nothing is built again.
    const again = await clawkerOk('firewall', 'up');
    assert.doesNotMatch(again.stderr, /Building /, again.stderr);
  });

  test('firewall status reaches the control plane (through the Docker API, no socket file to own)', async () => {
    const status = JSON.parse((await clawkerOk('firewall', 'status', '--json')).stdout) as Status;
    assert.equal(status.network.name, names.network);
    assert.ok(status.components.every((c) => c.name !== 'controlplane' || c.healthy), JSON.stringify(status.components));
  });

  test("run: the agent image is built from the package, the agent runs as the user's UID, and what it writes in the project is the user's", { timeout: 1_200_000 }, async () => {
    const r = await clawker(['run', '-d', '--agent', 'dev', '--', 'sh', '-c', 'id -u > /workspace/agent-uid; echo made > /workspace/made-by-agent; exec sleep 100000'], 1_200_000);
    assert.equal(r.code, 0, `clawker run as ${user} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    const made = join(project, 'made-by-agent');
    await until(`${made}`, async () => (existsSync(made) ? true : undefined), 60_000);
    const files = owners(project);
    assert.deepEqual(files.filter((o) => o.uid !== JOURNEY_UID), [], "every file the agent made is the user's on the host");
    assert.equal(readFileSync(join(project, 'agent-uid'), 'utf8').trim(), String(JOURNEY_UID), "the agent's command runs with the user's UID");
    const agents = (JSON.parse((await clawkerOk('firewall', 'status', '--json')).stdout) as Status).agents;
    assert.ok(agents.some((a) => a.containerName === AGENT && a.state === 'enrolled'), JSON.stringify(agents));
  });

  test('a blocked request shows in firewall events; firewall add lets it through', { timeout: 300_000 }, async () => {
    const blocked = await inAgent('getent hosts blocked.test; echo "exit=$?"');
    assert.match(blocked.stdout, /^exit=2$/m, `not resolved: ${blocked.stdout}${blocked.stderr}`);
    const event = await until('the DNS refusal in firewall events', async () => {
      const lines = (await clawkerOk('firewall', 'events', '--json', '--tail', '2000')).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      return lines.find((e) => e.source === 'dns' && e.verdict === 'denied' && JSON.stringify(e).includes('blocked.test'));
    });
    assert.equal(event.agent, 'dev', JSON.stringify(event));

    const add = await clawkerOk('firewall', 'add', 'blocked.test');
    assert.match(add.stderr, /applied to the running firewall/, add.stderr);
    assert.match((await readControlPlaneFile(names.controlplane, 'firewall/rules.json')) ?? '', /blocked\.test/, "the control plane's copy has the rule");
    const answer = inet.address(BLOCKED_HOST);
    const resolved = await until('blocked.test resolved after the add', async () => {
      const r = await inAgent('getent hosts blocked.test');
      return r.code === 0 ? r.stdout : undefined;
    });
    assert.match(resolved, new RegExp(`^${answer.replace(/\./g, '\\.')}\\s+blocked\\.test`, 'm'));
    await inAgent('curl -sk -m 5 -o /dev/null https://blocked.test/ || true');
    const conn = await until('the proxy accepted blocked.test', async () => (await envoyRecords(names.envoy)).find((r) => r.kind === 'conn' && r.sni === 'blocked.test' && r.verdict === 'accepted'));
    assert.equal(conn.chain, 'tls:blocked.test:443', JSON.stringify(conn));
    assert.deepEqual(owners(dataDir).filter((o) => o.uid !== JOURNEY_UID), []);
  });

  test("the host proxy run started is the user's process on the launcher's runtime; host-proxy status shows it and host-proxy stop ends it", async () => {
    const status = JSON.parse((await clawkerOk('host-proxy', 'status', '--json')).stdout) as { running: boolean; pid: number; stack: string; dataDir: string };
    assert.equal(status.running, true, JSON.stringify(status));
    assert.equal(status.stack, names.prefix);
    assert.equal(status.dataDir, dataDir);
    assert.equal(lstatSync(`/proc/${status.pid}`).uid, JOURNEY_UID, 'the daemon runs as the user');
    assert.equal(readlinkSync(`/proc/${status.pid}/exe`), runtime, "the daemon (and the CLI that started it) run on the launcher's runtime");
    assert.match((await clawkerOk('host-proxy', 'stop')).stdout, /^host proxy: stopped$/m);
    assert.equal(existsSync(`/proc/${status.pid}`), false, 'the daemon is gone');
    assert.match((await clawkerOk('host-proxy', 'status')).stdout, /^host proxy: not running \(data dir /m);
  });

  test('firewall down locks the agent down: nothing leaves it, not even DNS', async () => {
    const down = await clawkerOk('firewall', 'down');
    assert.match(down.stdout, /^locked down \(no egress until clawker firewall up\): dev$/m, down.stdout);
    const running = (await runOk('docker', ['ps', '--format', '{{.Names}}'])).split('\n');
    assert.deepEqual([names.controlplane, names.coredns, names.envoy].filter((n) => running.includes(n)), [], 'no stack container left running');
    const r = await inAgent('getent hosts blocked.test; echo "dns=$?"; curl -sk -m 3 -o /dev/null https://blocked.test/; echo "curl=$?"');
    assert.match(r.stdout, /^dns=2$/m, r.stdout);
    assert.doesNotMatch(r.stdout, /^curl=0$/m, r.stdout);
  });
});
