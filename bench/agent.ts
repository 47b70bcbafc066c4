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
 * Then the control plane's API as the CLI and the editor reach it (through the Docker API: an exec
 * session carrying HTTP, no socket file or port), each next to Docker doing the same kind of work
 * in the same run:
 *   (c) `clawker firewall status --json`, a CLI process, next to `docker exec <control plane> true`
 *       (Docker's own CLI: a process, one exec through the API);
 *   (d) the editor's client, `clawker firewall status --watch --json` (one process, one kept-alive
 *       exec session): a line on its stdin → the status line, next to one Docker API round trip
 *       in-process (GET /containers/<control plane>/json);
 *   (e) `clawker firewall add <IPv4> --proto tcp --port 5432` → enforced in a running agent (a
 *       poller in it connects in a loop; "enforced" = the wall-clock time of its first connect that
 *       lands, at the proxy), next to (c).
 *
 * Needs the test bed (bash test/testbed/provision.sh). Exits non-zero only when something could not
 * be measured, never for a slow figure.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import Docker from 'dockerode';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stackNames } from '../src/core/stack/stackNames';
import type { Status } from '../src/core/stack/controlPlaneApi';
import { ensureEnvoyStandinImage } from '../test/e2e/internet';
import { stopHostProxy } from '../src/platform/hostProxyLauncher';
import { ensureStackImages } from '../test/e2e/stackImages';
import { BASE_IMAGE, BPFFS_DIR, CLI_BUNDLE, clawker, type ClawkerResult, requireTestbed, ROOT, run, runOk } from '../test/e2e/testbed';
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

// ---- the control plane's API, from the CLI and from the editor's client ------------------------

const API_ROUNDS = Number(process.env.BENCH_API_ROUNDS ?? 15);
const ADDS = Number(process.env.BENCH_ADDS ?? 8);
/**
 * Targets. The CLI's status: what it adds to the CLI's own start (`clawker --version`) within 1.5×
 * Docker's CLI doing one exec (the transport costs no more than Docker's own use of it). The editor's
 * status under 50 ms. add → enforced from the CLI (what `firewall add` and the editor's save both
 * run) under 1 s, the CLI's start included.
 */
const TARGET_CLI_STATUS_RATIO = 1.5;
const TARGET_WATCH_MS = 50;
const TARGET_ADD_MS = 1000;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** The editor's client: one `status --watch --json` process; ask() writes a line and resolves at the answer. */
function watcher(): { ask: () => Promise<number>; ready: Promise<void>; close: () => void } {
  const child = spawn(process.execPath, [CLI_BUNDLE, 'firewall', 'status', '--watch', '--json'], { env: env(), cwd: workspace, stdio: ['pipe', 'pipe', 'inherit'] });
  let buffer = '';
  const waiters: ((line: string) => void)[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let i;
    while ((i = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      waiters.shift()?.(line);
    }
  });
  const next = (): Promise<string> => new Promise((resolve) => waiters.push(resolve));
  const ready = next().then((line) => {
    if (!(JSON.parse(line) as { status: unknown }).status) throw new Error(`the watcher's first line has no status: ${line}`);
  });
  return {
    ready,
    ask: async () => {
      const t0 = performance.now();
      const answer = next();
      child.stdin.write('\n');
      const line = await answer;
      const ms = performance.now() - t0;
      if (!(JSON.parse(line) as { status: unknown }).status) throw new Error(`the watcher answered without a status: ${line}`);
      return ms;
    },
    close: () => child.stdin.end(),
  };
}

async function apiSection(results: Results): Promise<void> {
  const docker = new Docker({ socketPath: '/var/run/docker.sock' });
  const cp = docker.getContainer(names.controlplane);
  // Warm: the first of each pays for disk caches.
  await cliOk('firewall', 'status', '--json');
  await runOk('docker', ['exec', names.controlplane, 'true']);
  const cliStatus: number[] = [];
  const cliStart: number[] = [];
  const dockerExec: number[] = [];
  for (let i = 0; i < API_ROUNDS; i++) {
    const trio = [
      async () => cliStatus.push(await timed(() => cliOk('firewall', 'status', '--json'))),
      async () => cliStart.push(await timed(() => cliOk('--version'))),
      async () => dockerExec.push(await timed(() => runOk('docker', ['exec', names.controlplane, 'true']))),
    ];
    if (i % 2) trio.reverse();
    for (const f of trio) await f();
  }

  const w = watcher();
  await w.ready;
  const watch: number[] = [];
  const inspect: number[] = [];
  await w.ask();
  await cp.inspect();
  for (let i = 0; i < API_ROUNDS * 2; i++) {
    watch.push(await w.ask());
    inspect.push(await timed(() => cp.inspect()));
  }
  w.close();

  // add → enforced in a running agent: a poller connects to the address in a loop and records its first success.
  await cliOk('run', '-d', '--agent', 'api', '--', 'sleep', '100000');
  const agent = `${names.prefix}.${PROJECT}.api`;
  const adds: number[] = [];
  for (let i = 1; i <= ADDS; i++) {
    const ip = `203.0.113.${100 + i}`;
    const marker = `add-${i}`;
    // Before the rule the connect lands on the proxy's catch-all (which waits for a TLS hello and
    // says nothing); after it, on the rule's tcp_proxy listener, which answers at once (the stand-in
    // writes envoy:<port>). Each try waits at most 20 ms for that answer.
    const poller = `until ( exec 3<>/dev/tcp/${ip}/5432 && IFS= read -r -t 0.02 line <&3 && [ "\${line#envoy:}" != "$line" ] ) 2>/dev/null; do :; done; date +%s.%N > /workspace/${marker}.tmp && mv /workspace/${marker}.tmp /workspace/${marker}`;
    await runOk('docker', ['exec', '-d', agent, 'bash', '-c', poller]);
    await sleep(300); // the poller is looping
    const t0 = Date.now();
    await cliOk('firewall', 'add', ip, '--proto', 'tcp', '--port', '5432');
    adds.push((await markerTime(join(workspace, marker), 30_000)) - t0);
  }
  await run('docker', ['rm', '-f', agent]);

  const med = (xs: number[]) => summarize(xs).median;
  const p95 = (xs: number[]) => summarize(xs).p95;
  const ms = (x: number): string => `${x.toFixed(x < 10 ? 1 : 0)} ms`;
  const c = med(cliStatus);
  const v = med(cliStart);
  const d = med(dockerExec);
  const api = c - v;
  const wm = med(watch);
  const im = med(inspect);
  const am = med(adds);
  results.startSection(`2. the control plane's API through Docker (${API_ROUNDS} interleaved rounds; the editor's client ${API_ROUNDS * 2}; ${ADDS} adds)`);
  console.log(`\n2. the control plane's API through Docker (an exec session carrying HTTP), medians (p95)`);
  const line = (label: string, x: number[], base?: number) => console.log(`   ${label.padEnd(78)}${ms(med(x)).padStart(9)} (${ms(p95(x))})${base === undefined ? '' : `  ${(med(x) / base).toFixed(2)}×`}`);
  line('(c) clawker firewall status --json, a CLI process', cliStatus, d);
  line('    of which the CLI\'s own start: clawker --version (Node, the bundle parsed and run)', cliStart);
  console.log(`   ${'    the API call: (c) minus the start'.padEnd(78)}${ms(api).padStart(9)}        ${(api / d).toFixed(2)}×`);
  line('    baseline: docker exec <control plane> true (Docker\'s CLI: a process, one exec)', dockerExec);
  line("(d) the editor's client (status --watch --json): a line in → the status out", watch, im);
  line('    baseline: GET /containers/<control plane>/json in-process (one Docker API round trip)', inspect);
  line('(e) clawker firewall add <IPv4> --proto tcp --port 5432 → enforced in the agent', adds, c);
  results.row('(c) firewall status --json from the CLI', ms(c), { baseline: baselineOf(ms(d), "docker exec <control plane> true (Docker's CLI)"), ratio: `${(c / d).toFixed(2)}×`, note: `p95 ${ms(p95(cliStatus))}` });
  results.row("part of (c): the CLI's own start (clawker --version)", ms(v), { note: `p95 ${ms(p95(cliStart))}` });
  results.row('part of (c): the API call ((c) minus the start)', ms(api), { baseline: baselineOf(ms(d), "docker exec <control plane> true (Docker's CLI)"), ratio: `${(api / d).toFixed(2)}×` });
  results.row("(d) status from the editor's client (status --watch: a line in → the status out)", ms(wm), { baseline: baselineOf(ms(im), 'one Docker API round trip in-process (inspect)'), ratio: `${(wm / im).toFixed(2)}×`, note: `p95 ${ms(p95(watch))}` });
  results.row('(e) firewall add from the CLI → enforced in the running agent', ms(am), { baseline: baselineOf(ms(c), '(c) firewall status from the CLI'), ratio: `${(am / c).toFixed(2)}×`, note: `p95 ${ms(p95(adds))}` });
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  const targets = [
    `${verdict(api / d <= TARGET_CLI_STATUS_RATIO)}  firewall status from the CLI, on top of the CLI's start, within ${TARGET_CLI_STATUS_RATIO}× docker exec: ${(api / d).toFixed(2)}× (${ms(api)} vs ${ms(d)}; the start itself ${ms(v)})`,
    `${verdict(wm < TARGET_WATCH_MS)}  status from the editor's client under ${TARGET_WATCH_MS} ms: ${ms(wm)} median, ${ms(p95(watch))} p95`,
    `${verdict(am < TARGET_ADD_MS)}  firewall add from the CLI → enforced under ${TARGET_ADD_MS} ms: ${ms(am)} median, ${ms(p95(adds))} p95`,
  ];
  console.log('\ntargets');
  for (const t of targets) {
    console.log(`  ${t}`);
    results.note(t);
  }
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
  const results = new Results('agent', "`clawker run -d` → the agent command running; the control plane's API from the CLI and the editor");
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
  results.startSection(`1. clawker run -d → the agent command running (${ROUNDS} interleaved rounds)`);
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
  await apiSection(results);
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
