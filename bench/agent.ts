/**
 * bench/agent: how long from `clawker run -d` to the agent's command running, with every image
 * already built, and where that time goes. Next to a baseline measured in the same run: `docker run
 * -d` of the same image with the same command as PID 1 (no CLI, no supervisor, no firewall).
 *
 * Each round, interleaved: (a) `docker run -d --entrypoint sh <agent image> -c 'date > marker; sleep'`,
 * (b) `clawker run -d --agent bN -- sh -c 'date > marker; sleep'`. The command writes the wall-clock time
 * it started into the bind-mounted workspace (the container's clock is the host's). For (b) the
 * control plane's egress events give the moment the agent was enrolled and the moment its command was
 * started over the session, and Docker gives the container's start, so the total splits into:
 *   CLI + create + start (run → container started), enrollment (started → enrolled: the control plane
 *   sees Docker's start event, finds the cgroup, writes container_map), session (enrolled → command
 *   running: mutual TLS to agentd, which forks the command), and the command's own start.
 *
 * Needs the test bed (bash test/testbed/provision.sh). Exits non-zero only when something could not
 * be measured, never for a slow figure.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stackNames } from '../src/core/stack/stackNames';
import type { Status } from '../src/core/stack/controlPlaneApi';
import { ensureEnvoyStandinImage } from '../test/e2e/internet';
import { stopHostProxy } from '../src/platform/hostProxyLauncher';
import { ensureStackImages } from '../test/e2e/stackImages';
import { BASE_IMAGE, BPFFS_DIR, clawker, type ClawkerResult, requireTestbed, ROOT, run, runOk } from '../test/e2e/testbed';
import { baselineOf, Results } from './lib/results';
import { summarize } from './lib/stats';
import { machine } from './lib/timing';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const names = stackNames(`clawker-bench-ag-${process.pid}`);
const pinDir = join(BPFFS_DIR, names.prefix);
const dataDir = mkdtempSync(join(tmpdir(), 'clawker-bench-agent-data-'));
const workspace = mkdtempSync(join(tmpdir(), 'clawker-bench-agent-ws-'));
const settings = join(dataDir, 'settings.yaml');
const PROJECT = 'bench';
const AGENT_IMAGE = `clawker-bench/agent:${process.pid}`;
let images: { coredns: string; controlplane: string };

const env = (): NodeJS.ProcessEnv => ({
  ...process.env,
  CLAWKER_DATA_DIR: dataDir,
  CLAWKER_STACK: names.prefix,
  CLAWKER_PIN_DIR: pinDir,
  CLAWKER_SETTINGS: settings,
  CLAWKER_COREDNS_IMAGE: images.coredns,
  CLAWKER_CONTROLPLANE_IMAGE: images.controlplane,
  CLAWKER_ENVOY_IMAGE: process.env.CLAWKER_ENVOY_IMAGE ?? 'clawker-e2e/envoy-standin:latest',
  CLAWKER_BASE_IMAGE: BASE_IMAGE,
  CLAWKER_AGENT_IMAGE: AGENT_IMAGE,
  CLAWKER_DRAIN_AFTER_MS: '600000',
});

const cli = (...args: string[]): Promise<ClawkerResult> => clawker(args, { env: env(), cwd: workspace, timeoutMs: 900_000 });

async function cliOk(...args: string[]): Promise<string> {
  const r = await cli(...args);
  if (r.code !== 0) throw new Error(`clawker ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Waits for the marker file and returns the wall-clock ms the command wrote into it. */
async function markerTime(file: string, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8').trim();
      if (/^\d+\.\d+$/.test(text)) return Number(text) * 1000;
    }
    if (Date.now() > deadline) throw new Error(`no marker ${file} after ${timeoutMs} ms`);
    await sleep(5);
  }
}

const COMMAND = (marker: string) => `date +%s.%N > /workspace/${marker}.tmp && mv /workspace/${marker}.tmp /workspace/${marker} && exec sleep 100000`;

async function baseline(round: number): Promise<number> {
  const marker = `base-${round}`;
  const name = `${names.prefix}-base-${round}`;
  const t0 = Date.now();
  await runOk('docker', ['run', '-d', '--name', name, '--network', 'none', '-v', `${workspace}:/workspace`, '--entrypoint', 'sh', AGENT_IMAGE, '-c', COMMAND(marker)]);
  const t = await markerTime(join(workspace, marker));
  await run('docker', ['rm', '-f', name]);
  return t - t0;
}

interface ClawkerRun {
  total: number;
  cli: number;
  toStarted: number;
  enrollment: number;
  session: number;
  command: number;
}

interface EventLine {
  time: string;
  agent?: string;
  message?: string;
}

async function clawkerRun(round: number): Promise<ClawkerRun> {
  const agent = `b${round}`;
  const marker = `run-${round}`;
  const t0 = Date.now();
  await cliOk('run', '-d', '--agent', agent, '--', 'sh', '-c', COMMAND(marker));
  const cliDone = Date.now();
  const t = await markerTime(join(workspace, marker));
  const container = `${names.prefix}.${PROJECT}.${agent}`;
  const started = Date.parse((await runOk('docker', ['inspect', '-f', '{{.State.StartedAt}}', container])).trim());
  let enrolled = NaN;
  let commanded = NaN;
  for (let i = 0; i < 50 && (Number.isNaN(enrolled) || Number.isNaN(commanded)); i++) {
    const events = (await cliOk('firewall', 'events', '--json', '--tail', '500')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as EventLine);
    enrolled = Date.parse(events.find((e) => e.agent === agent && /enrolled/.test(e.message ?? ''))?.time ?? '');
    commanded = Date.parse(events.find((e) => e.agent === agent && /command running/.test(e.message ?? ''))?.time ?? '');
    if (Number.isNaN(enrolled) || Number.isNaN(commanded)) await sleep(100);
  }
  if (Number.isNaN(enrolled) || Number.isNaN(commanded)) throw new Error(`no enrolled/command events for ${agent}`);
  await run('docker', ['rm', '-f', container]);
  return { total: t - t0, cli: cliDone - t0, toStarted: started - t0, enrollment: enrolled - started, session: commanded - enrolled, command: t - commanded };
}

async function main(): Promise<void> {
  await requireTestbed();
  await runOk('node', [join(ROOT, 'scripts', 'build.mjs')], 180_000);
  images = await ensureStackImages();
  writeFileSync(join(workspace, '.clawker.yaml'), `name: ${PROJECT}\n`);
  writeFileSync(settings, 'firewall:\n  enable: true\n');
  chmodSync(workspace, 0o777);
  if (!process.env.CLAWKER_ENVOY_IMAGE) process.env.CLAWKER_ENVOY_IMAGE = await ensureEnvoyStandinImage();
  const up = JSON.parse(await cliOk('firewall', 'up', '--json')) as Status;
  // Warm-up: builds the agent image (not measured) and the first-run paths of the CLI and host proxy.
  const warm = Date.now();
  await clawkerRun(0);
  await baseline(0);
  const warmMs = Date.now() - warm;

  const base: number[] = [];
  const runs: ClawkerRun[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    if (round % 2) {
      base.push(await baseline(round));
      runs.push(await clawkerRun(round));
    } else {
      runs.push(await clawkerRun(round));
      base.push(await baseline(round));
    }
  }
  const med = (xs: number[]) => summarize(xs).median;
  const b = med(base);
  const part = (k: keyof ClawkerRun) => med(runs.map((r) => r[k]));
  const total = part('total');
  const results = new Results('agent', '`clawker run -d` → the agent command running');
  const figure = (ms: number): string => `${ms.toFixed(0)} ms`;
  const pct = (share: number): string => `${(share * 100).toFixed(0)}%`;
  const row = (label: string, ms: number, share?: number) => `   ${label.padEnd(72)}${figure(ms).padStart(9)}${(share === undefined ? '' : pct(share)).padStart(7)}`;
  const baseLabel = '(a) docker run -d, same image, command as PID 1 (baseline)';
  const totalRatio = `${(total / b).toFixed(2)}×`;
  const perRound = runs.map((r, i) => (r.total / base[i]!).toFixed(2)).join(' ');
  console.log(`bench/agent — ${machine()}; network ${up.network.subnet}; median of ${ROUNDS} interleaved rounds (warm-up incl. image build: ${(warmMs / 1000).toFixed(1)} s)`);
  console.log(row(baseLabel, b));
  console.log(row('(b) clawker run -d → the agent command running', total));
  console.log(`   ratio (b)/(a): ${totalRatio}   (per round: ${perRound})`);
  results.row('(b) clawker run -d → the agent command running', figure(total), { baseline: baselineOf(figure(b), 'docker run -d, same image, command as PID 1'), ratio: totalRatio, note: `per round: ${perRound}` });
  console.log('   where (b) goes (medians of each part; shares of the median total):');
  const parts: [string, keyof ClawkerRun][] = [
    ['run → container started (CLI, checks, create, certificates, start)', 'toStarted'],
    ['started → enrolled (control plane: Docker event, cgroup, container_map)', 'enrollment'],
    ['enrolled → command started (mutual-TLS session, agentd forks)', 'session'],
    ['command started → its first line ran', 'command'],
  ];
  for (const [label, key] of parts) {
    console.log(row(label, part(key), part(key) / total));
    results.row(`part of (b): ${label}`, figure(part(key)), { note: `${pct(part(key) / total)} of (b)` });
  }
  console.log(row('(the CLI itself returned after)', part('cli')));
  results.row('(the CLI itself returned after)', figure(part('cli')));
  results.note(`median of ${ROUNDS} interleaved rounds; warm-up incl. image build: ${(warmMs / 1000).toFixed(1)} s`);
  results.save();
}

async function cleanup(): Promise<void> {
  const rows = await run('docker', ['ps', '-aq', '--filter', `label=dev.clawker.stack=${names.prefix}`]);
  for (const id of rows.stdout.split('\n').filter(Boolean)) await run('docker', ['rm', '-f', id]);
  for (let i = 0; i <= ROUNDS; i++) await run('docker', ['rm', '-f', `${names.prefix}-base-${i}`]);
  if (images) await cli('firewall', 'down');
  for (const n of [names.controlplane, names.envoy, names.coredns]) await run('docker', ['rm', '-f', n]);
  await run('docker', ['network', 'rm', names.network]);
  await stopHostProxy(dataDir).catch(() => false);
  rmSync(pinDir, { recursive: true, force: true });
  await run('docker', ['rmi', AGENT_IMAGE]);
  for (const d of [dataDir, workspace]) rmSync(d, { recursive: true, force: true });
}

main()
  .then(cleanup)
  .catch(async (e: unknown) => {
    console.error(`bench/agent: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    await cleanup();
    process.exit(1);
  });
