/**
 * `clawker firewall status | up | down | enable | disable | bypass | events`: the running stack.
 * `up` and `down` drive Docker from here (the control-plane container brings up the rest); the others
 * are calls to the control plane's API. Human output by default, `--json` for scripts. Exit codes:
 * 0 done (status: healthy), 1 unhealthy or refused, 2 usage or the stack cannot be reached.
 */
import { existsSync, readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import type Docker from 'dockerode';
import { loadSettings } from '../../core/config/load';
import { DEFAULT_UPSTREAM_DNS, type DnsGuardSettings } from '../../core/config/settingsSchema';
import { formatSeconds, parseDuration } from '../../core/duration';
import { describeEngine, EngineConfigError, type ResolvedEngine } from '../../core/engine/engineResolution';
import { unreachableAdvice } from '../../core/engine/engineSupport';
import { type EgressEvent, formatEgressEvent } from '../../core/events/egressEvent';
import type { AgentResult, AgentStatus, Status } from '../../core/stack/controlPlaneApi';
import { PIN_DIR } from '../../core/stack/containerSpecs';
import { stackImagesFromEnv } from '../../core/stack/stackImages';
import { DEFAULT_STACK_PREFIX, stackNames } from '../../core/stack/stackNames';
import { type ControlPlaneClient, ControlPlaneNotRunning, ControlPlaneRequestError } from '../../platform/controlPlaneClient';
import { cliControlPlane, cliEngine } from '../controlPlaneAccess';
import { settingsFile } from '../settingsFile';
import { dockerClientFor, resolveEngineFor } from '../../platform/docker/engineClient';
import { type StackOptions, StackError, stackDown, stackUp } from '../../platform/docker/stackLauncher';
import { ensureStackImages, StackImageError } from '../../platform/docker/stackImages';
import { defaultDataDir } from '../../platform/ruleStore';

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`${line}\n`);

/** Control-plane tunables a caller (tests) may pass through from its environment. */
const PASSED_THROUGH = ['CLAWKER_HEAL_AFTER_MS', 'CLAWKER_DRAIN_AFTER_MS', 'CLAWKER_PROBE_INTERVAL_MS'] as const;


interface Settings {
  readonly enabled: boolean;
  readonly upstreams: readonly string[];
  readonly dns?: DnsGuardSettings;
  readonly docker?: { readonly host?: string; readonly socket?: string };
}

function readSettings(): Settings | undefined {
  const file = settingsFile();
  if (!existsSync(file)) return { enabled: true, upstreams: DEFAULT_UPSTREAM_DNS };
  const loaded = loadSettings(readFileSync(file, 'utf8'));
  if (loaded.failed || !loaded.config) {
    err(`clawker: ${file} has errors (clawker validate ${file}); nothing was done.`);
    process.exitCode = 2;
    return undefined;
  }
  return { enabled: loaded.config.firewall.enable, upstreams: loaded.config.firewall.upstream_dns, dns: loaded.config.firewall.dns, docker: loaded.config.docker };
}

function stackOptions(settings: Settings, json: boolean): StackOptions {
  const env = process.env;
  return {
    dataDir: defaultDataDir(),
    names: stackNames(env.CLAWKER_STACK ?? DEFAULT_STACK_PREFIX),
    ...stackImagesFromEnv(env),
    upstreams: settings.upstreams,
    ...(settings.dns ? { dns: settings.dns } : {}),
    pinDir: env.CLAWKER_PIN_DIR ?? PIN_DIR,
    env: Object.fromEntries(PASSED_THROUGH.filter((k) => env[k] !== undefined).map((k) => [k, env[k]!])),
    // Progress goes to stderr, so --json output stays one document on stdout.
    progress: (m) => err(json ? m : `==> ${m}`),
  };
}

/** The engine this command used, for the message when it cannot be reached. */
let engineInUse: ResolvedEngine | undefined;
function docker(settings: Settings): Docker {
  engineInUse = resolveEngineFor(process.env, settings.docker);
  return dockerClientFor(engineInUse);
}
function client(): ControlPlaneClient {
  if (process.env.CLAWKER_API_SOCKET) return cliControlPlane();
  engineInUse = cliEngine();
  return cliControlPlane(process.env, undefined, engineInUse);
}

/** How often `status --watch` asks: often while the stack runs (bypass countdowns), rarely while it does not. */
const WATCH_RUNNING_MS = 2_000;
const WATCH_STOPPED_MS = 5_000;

/**
 * `status --watch --json`: one line `{"status": Status | null}` now and on every change, until
 * stdin closes or a signal comes. The editor follows this instead of polling (one process, one
 * kept-alive exec session).
 */
async function watchStatus(): Promise<void> {
  const cp = client();
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  // A line on stdin asks for a status now (the editor after a command); its end stops the watch.
  let wake: (() => void) | undefined;
  process.stdin
    .on('data', () => wake?.())
    .on('end', () => stop.abort())
    .on('error', () => stop.abort());
  let last = '';
  let asked = false;
  while (!stop.signal.aborted) {
    let status: Status | null = null;
    let error: string | undefined;
    try {
      status = await cp.status();
    } catch (e) {
      if (!(e instanceof ControlPlaneNotRunning)) error = e instanceof Error ? e.message : String(e);
    }
    const line = JSON.stringify({ status, ...(error ? { error } : {}) });
    // A requested status is always printed, changed or not: the caller waits for it.
    if (line !== last || asked) out((last = line));
    asked = false;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, status ? WATCH_RUNNING_MS : WATCH_STOPPED_MS);
      wake = () => {
        asked = true;
        done();
      };
      stop.signal.addEventListener('abort', done, { once: true });
    });
  }
  cp.close();
}

/** Failures say which component and what to do; exit 2 when the stack cannot be reached at all. */
async function guarded(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (e) {
    if (e instanceof ControlPlaneNotRunning) {
      err(`clawker: ${e.message}`);
      process.exitCode = 2;
    } else if (e instanceof ControlPlaneRequestError) {
      err(`clawker: ${e.body.component ? `${e.body.component}: ` : ''}${e.body.error}${e.body.next ? `\n  next: ${e.body.next}` : ''}`);
      // 409: an agent name two running agents share; the message lists their container names.
      process.exitCode = e.status === 404 || e.status === 400 || e.status === 409 ? 1 : 2;
    } else if (e instanceof StackError || e instanceof StackImageError || e instanceof EngineConfigError) {
      err(`clawker: ${e.message}\n  next: ${e.next}`);
      process.exitCode = 2;
    } else {
      const unreachable = engineInUse ? unreachableAdvice(e, describeEngine(engineInUse), { env: process.env }) : undefined;
      err(unreachable ? `clawker: ${unreachable.what}\n  next: ${unreachable.next}` : `clawker: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 2;
    }
  }
}

function printStatus(s: Status): void {
  out(`firewall: ${s.phase}   network ${s.network.name} ${s.network.subnet}   Envoy ${s.network.envoy}, CoreDNS ${s.network.coredns}`);
  for (const c of s.components) out(`  ${c.name.padEnd(13)}${(c.healthy ? 'healthy' : 'UNHEALTHY').padEnd(11)}${c.detail}${c.next ? `\n  ${' '.repeat(24)}next: ${c.next}` : ''}`);
  out(`rules: ${s.rules} (${s.routes} routes)`);
  const drops = s.eventDrops;
  if (drops && (drops.ring > 0 || drops.rateLimited > 0)) {
    out(`events not reported: ${drops.rateLimited} held back by the per-agent rate limit, ${drops.ring} lost to a full ring (decisions still applied)`);
  }
  out(`agents: ${s.agents.length}`);
  const shown = s.agents.map((a) => agentLabel(a, s.agents));
  const width = Math.max(20, ...shown.map((l) => l.length + 2));
  s.agents.forEach((a, i) => {
    const until = a.bypassUntil ? ` until ${a.bypassUntil} (${formatSeconds((Date.parse(a.bypassUntil) - Date.now()) / 1000)} left)` : '';
    out(`  ${shown[i]!.padEnd(width)}${a.state}${until}${a.guarded ? '' : '  (not under the agents cgroup: enforced since enrolment only)'}`);
  });
}

/** The agent name, or its container name when another running agent has the same agent name. */
export function agentLabel(a: AgentStatus, all: readonly AgentStatus[]): string {
  const shared = all.some((o) => o.container !== a.container && o.agent === a.agent);
  return shared ? (a.containerName ?? a.container.slice(0, 12)) : a.agent;
}

const AGENT_OPTION_HELP =
  'the agent, as clawker firewall status lists it: its container name (clawker.web.dev), its container id (12+ characters), or its agent name (dev) when only one running agent has that name';

function printAgentResult(r: AgentResult, json: boolean): void {
  if (json) out(JSON.stringify(r, null, 2));
  else out(r.message);
}

export function registerFirewallStackCommands(firewall: Command): void {
  firewall
    .command('status')
    .description('Health of the firewall stack (eBPF datapath, CoreDNS, Envoy, control plane), its agents and rule count. Exit 0 healthy, 1 not.')
    .option('--json', 'print the status as JSON')
    .option('--watch', 'with --json: a line now and on every change, until stdin closes (for the editor)')
    .action((o: { json?: boolean; watch?: boolean }) =>
      guarded(async () => {
        if (o.watch) {
          if (!o.json) throw new StackError('--watch goes with --json', 'clawker firewall status --watch --json');
          return watchStatus();
        }
        let status: Status;
        try {
          status = await client().status();
        } catch (e) {
          if (!(e instanceof ControlPlaneNotRunning)) throw e;
          if (o.json) out(JSON.stringify({ phase: 'not running', components: [], agents: [] }, null, 2));
          else out(`firewall: not running (start it with: clawker firewall up)`);
          process.exitCode = 1;
          return;
        }
        if (o.json) out(JSON.stringify(status, null, 2));
        else printStatus(status);
        if (!status.components.every((c) => c.healthy)) process.exitCode = 1;
      }),
    );

  firewall
    .command('up')
    .description('Start the firewall stack: network, eBPF datapath, CoreDNS, Envoy, control plane (idempotent).')
    .option('--json', 'print the resulting status as JSON')
    .action((o: { json?: boolean }) =>
      guarded(async () => {
        const settings = readSettings();
        if (!settings) return;
        if (!settings.enabled) {
          err(`clawker: the firewall is disabled in ${settingsFile()} (firewall.enable: false); not starting it.`);
          process.exitCode = 1;
          return;
        }
        const client = docker(settings);
        const status = await stackUp(client, { ...stackOptions(settings, !!o.json), engine: engineInUse! });
        if (o.json) out(JSON.stringify(status, null, 2));
        else printStatus(status);
        if (!status.components.every((c) => c.healthy)) process.exitCode = 1;
      }),
    );

  firewall
    .command('build')
    .description(
      "Build the stack's images (control plane, CoreDNS) on the engine from this installation and pull Envoy when missing; `up` does this when needed. A running stack keeps its images until `down` and `up`.",
    )
    .option('--force', 'build even when the images are up to date')
    .addOption(new Option('--only <image>', 'only this image').choices(['controlplane', 'coredns', 'envoy']))
    .action((o: { force?: boolean; only?: 'controlplane' | 'coredns' | 'envoy' }) =>
      guarded(async () => {
        const settings = readSettings();
        if (!settings) return;
        const client = docker(settings);
        const options = stackOptions(settings, false);
        const result = await ensureStackImages(client, {
          images: options.images,
          named: options.named!,
          progress: options.progress,
          building: true,
          force: !!o.force,
          ...(o.only ? { only: [o.only] } : {}),
        });
        const { images } = options;
        for (const image of ['controlplane', 'coredns'] as const) {
          if (!o.only || o.only === image) out(`${images[image]}: ${result.built.includes(images[image]) ? 'built' : 'up to date'}`);
        }
        if (o.only && o.only !== 'envoy') return;
        if (result.envoyMissing !== undefined) {
          err(`clawker: ${images.envoy} is not on the engine and could not be pulled: ${result.envoyMissing}\n  next: docker pull ${images.envoy} (or load it), then clawker firewall build`);
          process.exitCode = 1;
        } else out(`${images.envoy}: present`);
      }),
    );

  firewall
    .command('down')
    .description('Stop the firewall stack. Running agents are locked down (no egress), never left open.')
    .option('--json', 'print what was done as JSON')
    .action((o: { json?: boolean }) =>
      guarded(async () => {
        const settings = readSettings();
        if (!settings) return;
        const client = docker(settings);
        const result = await stackDown(client, { ...stackOptions(settings, !!o.json), engine: engineInUse! });
        if (o.json) out(JSON.stringify(result, null, 2));
        else {
          out(`firewall down: removed ${result.removed.join(', ') || 'nothing'}.`);
          if (result.lockedDown.length) out(`locked down (no egress until clawker firewall up): ${result.lockedDown.join(', ')}`);
        }
      }),
    );

  for (const enabled of [true, false]) {
    firewall
      .command(enabled ? 'enable' : 'disable')
      .description(
        enabled
          ? "Re-enroll an agent in the firewall's routing (idempotent)."
          : "Take an agent out of the firewall's routing: its egress is unrestricted (still recorded) until enable.",
      )
      .requiredOption('--agent <agent>', AGENT_OPTION_HELP)
      .option('--json', 'print the result as JSON')
      .action((o: { agent: string; json?: boolean }) =>
        guarded(async () => {
          const r = await client().setEnabled(o.agent, enabled);
          printAgentResult(r, !!o.json);
          if (!enabled && !o.json) err('clawker: warning: this agent can now reach any destination. Re-enable with: clawker firewall enable --agent ' + o.agent);
        }),
      );
  }

  const bypass = firewall
    .command('bypass')
    .description('Temporary unrestricted egress for one agent (eBPF bypass flag); it closes by itself when the time is up.')
    .argument('[duration]', 'how long: 30s, 5m, 1h30m')
    .requiredOption('--agent <agent>', AGENT_OPTION_HELP)
    .option('--stop', 'close the bypass now')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  clawker firewall bypass 5m --agent dev\n  clawker firewall bypass 5m --agent clawker.web.dev   (when two projects each run an agent named dev)\n  clawker firewall bypass --stop --agent dev',
    );
  bypass.action((duration: string | undefined, o: { agent: string; stop?: boolean; json?: boolean }) =>
    guarded(async () => {
      if (o.stop && duration !== undefined) return bypass.error('error: give a duration or --stop, not both', { exitCode: 2 });
      if (!o.stop && duration === undefined) return bypass.error('error: give a duration (e.g. 5m) or --stop', { exitCode: 2 });
      let seconds = 0;
      if (!o.stop) {
        const parsed = parseDuration(duration!);
        if ('error' in parsed) return bypass.error(`error: ${parsed.error}`, { exitCode: 2 });
        seconds = parsed.seconds;
      }
      printAgentResult(await client().bypass(o.agent, seconds), !!o.json);
    }),
  );

  firewall
    .command('events')
    .description('Egress decisions (kernel verdicts, DNS refusals, proxy denials, control-plane audit), newest last.')
    .option('-f, --follow', 'keep printing new events')
    .option('-n, --tail <n>', 'how many past events to print first', (v) => Number(v), 50)
    .option('--json', 'one JSON object per line')
    .option('--ready-line', 'with --json: print {"ready":true} once the stream is open (for the editor)')
    .action((o: { follow?: boolean; tail: number; json?: boolean; readyLine?: boolean }) =>
      guarded(async () => {
        const abort = new AbortController();
        process.once('SIGINT', () => abort.abort());
        process.once('SIGTERM', () => abort.abort());
        const onOpen = o.json && o.readyLine ? () => out(JSON.stringify({ ready: true })) : undefined;
        await client().events({ tail: o.tail, follow: !!o.follow, signal: abort.signal, ...(onOpen ? { onOpen } : {}) }, (e) =>
          out(o.json ? JSON.stringify(e) : formatEgressEvent(e as EgressEvent)),
        );
      }),
    );
}
