/**
 * `clawker run | create | start | stop | restart | rm | logs | attach | ps`: agents, one container
 * each, named `<stack>.<project>.<agent>`. The verbs only read the command line, the settings and
 * the project file, call src/platform/docker/agentContainers.ts, and print: progress (stack start,
 * image build steps, host proxy) and warnings on stderr, results on stdout (`--json` where it makes
 * sense). Every failure names the component and the next step.
 *
 * The agent: `--agent NAME`; without it `run` and `create` use `dev` (run: the project's only
 * agent, if it has one), the other verbs the project's only agent (with several, --agent is
 * required). The project: `--project-dir` (default: the current folder), its `.clawker.yaml` (or
 * `.clawker/clawker.yaml`; without one the defaults apply) and its name (`name:`, else the folder's).
 *
 * Environment, as for `clawker firewall`: CLAWKER_SETTINGS, CLAWKER_DATA_DIR, CLAWKER_STACK,
 * CLAWKER_{ENVOY,COREDNS,CONTROLPLANE}_IMAGE, CLAWKER_PIN_DIR, DOCKER_HOST (and the docker context); and CLAWKER_AGENT_IMAGE
 * (the agent image's tag), CLAWKER_BASE_IMAGE and CLAWKER_BUILD_CA_FILE (see agentImage.ts).
 *
 * Exit codes: 0 done, 1 failed (or `run`'s command exited non-zero), 2 usage.
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Command, type CommanderError, InvalidArgumentError } from 'commander';
import type Docker from 'dockerode';
import { type AgentProjectSettings, DEFAULT_PROJECT_SETTINGS, projectSettingsOf } from '../../core/agents/agentContainerSpec';
import { resolveProjectName } from '../../core/agents/agentNames';
import { type AgentSummary, chooseAgent, DEFAULT_STOP_TIMEOUT_SECONDS, DETACH_KEYS } from '../../core/agents/lifecycle';
import { loadProject, loadSettings } from '../../core/config/load';
import { DEFAULT_UPSTREAM_DNS, type DnsGuardSettings } from '../../core/config/settingsSchema';
import type { NormalizedRule } from '../../core/firewall/rule';
import { EngineConfigError, type ResolvedEngine } from '../../core/engine/engineResolution';
import { formatProblem } from '../../core/problems';
import { PIN_DIR } from '../../core/stack/containerSpecs';
import { stackImagesFromEnv } from '../../core/stack/stackImages';
import { DEFAULT_STACK_PREFIX, stackNames } from '../../core/stack/stackNames';
import { ControlPlaneNotRunning, ControlPlaneRequestError } from '../../platform/controlPlaneClient';
import * as agentContainers from '../../platform/docker/agentContainers';
import { type AgentRuntime, type AttachOptions, AgentLifecycleError, dockerUnreachable } from '../../platform/docker/agentContainers';
import { dockerClientFor, resolveEngineFor } from '../../platform/docker/engineClient';
import { defaultDataDir } from '../../platform/ruleStore';
import { PROJECT_FILE_CANDIDATES } from '../projectFile';
import { settingsFile } from '../settingsFile';

/** The platform functions the verbs call (tests pass fakes). */
export type AgentPlatform = Pick<
  typeof agentContainers,
  'createAgent' | 'startAgent' | 'stopAgent' | 'restartAgent' | 'removeAgent' | 'agentLogs' | 'attachAgent' | 'listAgents' | 'findAgent'
>;

export interface AgentCliDeps {
  readonly platform: AgentPlatform;
  readonly docker: (engine: ResolvedEngine) => Docker;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: () => string;
  readonly homeDir: string;
  readonly stdin: AttachOptions['stdin'];
  readonly stdout: AttachOptions['stdout'];
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly setExitCode: (code: number) => void;
  /** Commander's usage errors and --help end here: exit (2 for an error). Tests throw instead. */
  readonly exit: (e: CommanderError) => never;
  /** Calls `handler` on Ctrl-C (SIGINT); returns a function that stops listening. */
  readonly onInterrupt: (handler: () => void) => () => void;
}

export function defaultAgentCliDeps(): AgentCliDeps {
  return {
    platform: agentContainers,
    docker: (engine) => dockerClientFor(engine),
    env: process.env,
    cwd: () => process.cwd(),
    homeDir: homedir(),
    stdin: process.stdin,
    stdout: process.stdout,
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    setExitCode: (code) => void (process.exitCode = code),
    exit: (e) => process.exit(e.exitCode === 0 ? 0 : 2),
    onInterrupt: (handler) => {
      process.once('SIGINT', handler);
      return () => void process.removeListener('SIGINT', handler);
    },
  };
}

/** Control-plane tunables passed through from the environment (tests), as `firewall up` does. */
const PASSED_THROUGH = ['CLAWKER_HEAL_AFTER_MS', 'CLAWKER_DRAIN_AFTER_MS', 'CLAWKER_PROBE_INTERVAL_MS'] as const;

/** A usage problem found after parsing (exit 2). */
class UsageError extends Error {}
/** Already reported (problems printed); exit with this code. */
class Reported extends Error {
  constructor(readonly exitCode: number) {
    super('reported');
  }
}

interface CommonOptions {
  agent?: string;
  projectDir?: string;
  json?: boolean;
}

/** The agent image's tag, when not agentImage.ts's default (tests, a second install). */
const ENV_AGENT_IMAGE = 'CLAWKER_AGENT_IMAGE';

interface Project {
  readonly name: string;
  readonly workspace: string;
  readonly settings: AgentProjectSettings;
  readonly rules: readonly NormalizedRule[];
}

interface Context {
  readonly rt: AgentRuntime;
  readonly engine: ResolvedEngine;
}

export function registerAgentCommands(program: Command, deps: AgentCliDeps = defaultAgentCliDeps()): void {
  const { out, err } = deps;

  // ---- settings, project, runtime ----------------------------------------------------------------

  function runtime(json: boolean, signal?: AbortSignal): Context {
    const file = settingsFile(deps.env);
    let enabled = true;
    let upstreams: readonly string[] = DEFAULT_UPSTREAM_DNS;
    let dns: DnsGuardSettings | undefined;
    let dockerSettings: { host?: string; socket?: string } | undefined;
    if (existsSync(file)) {
      const loaded = loadSettings(readFileSync(file, 'utf8'));
      if (loaded.failed || !loaded.config) {
        for (const p of loaded.problems.filter((x) => x.severity === 'error')) err(formatProblem(file, loaded.lines, p));
        err(`clawker: settings: ${file} has errors, so nothing was done; fix them (clawker validate ${file}).`);
        throw new Reported(1);
      }
      enabled = loaded.config.firewall.enable;
      upstreams = loaded.config.firewall.upstream_dns;
      dns = loaded.config.firewall.dns;
      dockerSettings = loaded.config.docker;
    }
    let engine: ResolvedEngine;
    try {
      engine = resolveEngineFor(deps.env, dockerSettings);
    } catch (e) {
      if (e instanceof EngineConfigError) throw new AgentLifecycleError(e.message, 'docker', e.next);
      throw e;
    }
    let names;
    try {
      names = stackNames(deps.env.CLAWKER_STACK ?? DEFAULT_STACK_PREFIX);
    } catch (e) {
      throw new UsageError(`CLAWKER_STACK: ${(e as Error).message}`);
    }
    const env = deps.env;
    const rt: AgentRuntime = {
      docker: deps.docker(engine),
      dataDir: defaultDataDir(env),
      names,
      firewallEnabled: enabled,
      stack: {
        ...stackImagesFromEnv(env),
        upstreams,
        ...(dns ? { dns } : {}),
        pinDir: env.CLAWKER_PIN_DIR ?? PIN_DIR,
        env: Object.fromEntries(PASSED_THROUGH.filter((k) => env[k] !== undefined).map((k) => [k, env[k]!])),
      },
      engine,
      // Progress goes to stderr, so --json output stays one document on stdout.
      onProgress: (m) => err(json ? m : `==> ${m}`),
      ...(signal ? { signal } : {}),
    };
    return { rt, engine };
  }

  /** The project of --project-dir; `announce`: say when its name was rewritten (when creating). */
  function project(o: CommonOptions, announce = false): Project {
    const dir = resolve(deps.cwd(), o.projectDir ?? '.');
    let workspace: string;
    try {
      if (!statSync(dir).isDirectory()) throw new UsageError(`--project-dir ${dir} is not a folder`);
      workspace = realpathSync(dir);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`--project-dir ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const candidate = PROJECT_FILE_CANDIDATES.map((f) => join(workspace, f)).find((f) => existsSync(f));
    let settings = DEFAULT_PROJECT_SETTINGS;
    let rules: readonly NormalizedRule[] = [];
    let configName: string | undefined;
    if (candidate) {
      let text: string;
      try {
        text = readFileSync(candidate, 'utf8');
      } catch (e) {
        err(`clawker: configuration: cannot read ${candidate}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
        throw new Reported(1);
      }
      const loaded = loadProject(text);
      const shown = loaded.problems.filter((p) => p.severity === 'error');
      for (const p of shown) err(formatProblem(candidate, loaded.lines, p));
      if (loaded.failed || !loaded.config) {
        err(`clawker: configuration: ${candidate} has errors, so no agent was touched; fix them (clawker validate ${candidate}).`);
        throw new Reported(1);
      }
      const warnings = loaded.problems.filter((p) => p.severity === 'warning').length;
      if (warnings) err(`clawker: ${candidate}: ${warnings} warning${warnings === 1 ? '' : 's'} (clawker validate ${candidate} shows them)`);
      settings = projectSettingsOf(loaded.config);
      rules = loaded.rules;
      configName = loaded.config.name;
    }
    const name = resolveProjectName(configName, workspace);
    if ('error' in name) {
      err(`clawker: configuration: ${name.error}`);
      throw new Reported(1);
    }
    if (name.from !== undefined && announce) err(`clawker: project ${JSON.stringify(name.from)} is called ${name.name} in container names`);
    return { name: name.name, workspace, settings, rules };
  }

  /** The agent meant: --agent, else chosen among the project's agents (see chooseAgent). */
  async function agentOf(ctx: Context, p: Project, o: CommonOptions, intent: 'create' | 'run' | 'existing'): Promise<string> {
    const existing = o.agent === undefined && intent !== 'create' ? (await deps.platform.listAgents(ctx.rt, { project: p.name, all: true })).map((a) => a.agent) : [];
    const chosen = chooseAgent(o.agent, existing, intent, p.name);
    if ('error' in chosen) {
      if (chosen.usage) throw new UsageError(chosen.error);
      throw new AgentLifecycleError(chosen.error, 'agent', 'clawker ps -a lists the agents of every project');
    }
    return chosen.agent;
  }

  /** Runs a verb: failures print `clawker: <component>: <what>` and `next: <what to do>`. */
  async function guarded(json: boolean, action: (ctx: Context) => Promise<void>, signal?: AbortSignal): Promise<void> {
    let engine: ResolvedEngine | undefined;
    try {
      const ctx = runtime(json, signal);
      engine = ctx.engine;
      await action(ctx);
    } catch (e) {
      if (e instanceof Reported) return deps.setExitCode(e.exitCode);
      if (e instanceof UsageError) {
        err(`clawker: ${e.message}`);
        return deps.setExitCode(2);
      }
      const failure = e instanceof AgentLifecycleError ? e : (engine ? dockerUnreachable(e, engine) : undefined);
      if (failure) err(`clawker: ${failure.component}: ${failure.message}\n  next: ${failure.next}`);
      else if (e instanceof ControlPlaneNotRunning) err(`clawker: firewall: ${e.message}`);
      else if (e instanceof ControlPlaneRequestError) err(`clawker: firewall: ${e.body.component ? `${e.body.component}: ` : ''}${e.body.error}${e.body.next ? `\n  next: ${e.body.next}` : ''}`);
      else err(`clawker: ${e instanceof Error ? e.message : String(e)}`);
      deps.setExitCode(1);
    }
  }

  const usageExitsTwo = (command: Command): Command => command.exitOverride((e) => deps.exit(e));

  const common = (command: Command, what = 'the agent'): Command =>
    usageExitsTwo(command)
      .option('--agent <name>', `${what} (default: the project's only agent${command.name() === 'run' || command.name() === 'create' ? ', else dev' : ''})`)
      .option('--project-dir <dir>', 'the project folder, mounted at /workspace (default: the current folder)');

  /** The command after `--` (run, create); operands without `--` are a usage error. */
  function commandAfterDashes(command: Command, operands: string[]): string[] | undefined {
    if (operands.length === 0) return undefined;
    // commander keeps the program's raw arguments (untyped): was there a `--` at all?
    const raw = (command.parent as unknown as { rawArgs?: string[] } | null)?.rawArgs ?? [];
    if (!raw.includes('--')) throw new UsageError(`put the agent's command after --, e.g. clawker ${command.name()} -- ${operands.join(' ')}`);
    return operands;
  }

  const printCreated = (created: agentContainers.CreatedAgent, json: boolean) => {
    if (json) return;
    out(`${created.name}`);
    err(`created ${created.name} (${created.image}${created.imageBuilt ? ', image built' : ''}; firewall ${created.firewall ? 'on' : 'OFF'}${created.hostProxyUrl ? `; host proxy ${created.hostProxyUrl}` : ''})`);
  };

  // ---- run ---------------------------------------------------------------------------------------

  const run = common(program.command('run'))
    .description('Create the agent if it does not exist, start it, and attach to it (unless -d or stdin is not a terminal). Detach with ctrl-p ctrl-q.')
    .argument('[command...]', "the agent's command, after -- (default: the image's, claude); used when the agent is created")
    .option('-d, --detach', 'start it and return (do not attach)')
    .option('--rebuild', 'rebuild the agent image first (e.g. after clawker firewall rotate-ca)')
    .option('--json', 'with -d: print what was done as JSON')
    .addHelpText('after', '\nExamples:\n  clawker run\n  clawker run --agent reviewer -d\n  clawker run --agent shell -- bash -l');
  run.action((operands: string[], o: CommonOptions & { detach?: boolean; rebuild?: boolean }) => {
    const abort = new AbortController();
    const stopListening = deps.onInterrupt(() => abort.abort());
    return guarded(
      !!o.json,
      async (ctx) => {
        const cmd = commandAfterDashes(run, operands);
        const p = project(o, true);
        const agent = await agentOf(ctx, p, o, 'run');
        const ref = { project: p.name, agent };
        const existing = await deps.platform.findAgent(ctx.rt, ref);
        let created: agentContainers.CreatedAgent | undefined;
        if (existing) {
          if (cmd) throw new AgentLifecycleError(`${existing.name} exists; the command after -- applies only when an agent is created`, 'agent', `remove it first (clawker rm --agent ${agent}) to give it another command`);
          if (o.rebuild) throw new AgentLifecycleError(`${existing.name} exists; --rebuild applies only when an agent is created`, 'agent', `remove it first (clawker rm --agent ${agent}), then clawker run --rebuild --agent ${agent}`);
        } else {
          created = await deps.platform.createAgent(ctx.rt, createOptions(p, agent, cmd, o.rebuild));
          printCreated(created, !!o.json);
        }
        const attach = !o.detach && deps.stdin.isTTY === true;
        if (!attach) {
          if (!o.detach) err('clawker: stdin is not a terminal: starting without attaching (clawker attach to connect later)');
          const started = await deps.platform.startAgent(ctx.rt, ref, { projectRules: p.rules });
          if (o.json) out(JSON.stringify({ ...(created ? { created } : {}), ...started }, null, 2));
          else out(started.message);
          return;
        }
        stopListening(); // from here ctrl-c belongs to the agent
        err(`attaching to ${existing?.name ?? created!.name}; detach with ctrl-p ctrl-q`);
        const result = await deps.platform.attachAgent(ctx.rt, ref, { stdin: deps.stdin, stdout: deps.stdout, start: true, projectRules: p.rules, detachKeys: DETACH_KEYS });
        reportAttach(result, agent);
      },
      abort.signal,
    ).finally(stopListening);
  });

  /** What `run` and `create` ask createAgent for: the project, the agent, its command. */
  function createOptions(p: Project, agent: string, cmd: readonly string[] | undefined, rebuild: boolean | undefined): agentContainers.CreateAgentOptions {
    return {
      project: p.name,
      agent,
      workspace: p.workspace,
      settings: p.settings,
      projectRules: p.rules,
      homeDir: deps.homeDir,
      ...(deps.env[ENV_AGENT_IMAGE] ? { imageTag: deps.env[ENV_AGENT_IMAGE] } : {}),
      ...(cmd ? { cmd } : {}),
      ...(rebuild ? { rebuild: true } : {}),
    };
  }

  function reportAttach(result: agentContainers.AttachResult, agent: string): void {
    if (result.detached) {
      err(`\ndetached from ${result.agent.name}; it keeps running (clawker attach --agent ${agent} to return, clawker stop --agent ${agent} to stop it)`);
      return;
    }
    const code = result.agent.exitCode ?? 0;
    err(`\n${result.agent.name} exited (code ${code}); clawker start --agent ${agent} starts it again, clawker rm --agent ${agent} removes it`);
    if (code !== 0) deps.setExitCode(1);
  }

  // ---- create ------------------------------------------------------------------------------------

  const create = common(program.command('create'))
    .description('Create an agent container (not started): the firewall stack and the agent image are brought up first.')
    .argument('[command...]', "the agent's command, after -- (default: the image's, claude)")
    .option('--rebuild', 'rebuild the agent image first (e.g. after clawker firewall rotate-ca)')
    .option('--json', 'print what was created as JSON');
  create.action((operands: string[], o: CommonOptions & { rebuild?: boolean }) => {
    const abort = new AbortController();
    const stopListening = deps.onInterrupt(() => abort.abort());
    return guarded(
      !!o.json,
      async (ctx) => {
        const cmd = commandAfterDashes(create, operands);
        const p = project(o, true);
        const agent = await agentOf(ctx, p, o, 'create');
        const created = await deps.platform.createAgent(ctx.rt, createOptions(p, agent, cmd, o.rebuild));
        if (o.json) out(JSON.stringify(created, null, 2));
        else printCreated(created, false);
      },
      abort.signal,
    ).finally(stopListening);
  });

  // ---- start, stop, restart, rm --------------------------------------------------------------------

  const printAction = (r: agentContainers.AgentActionResult, json: boolean) => (json ? out(JSON.stringify(r, null, 2)) : out(r.message));

  common(program.command('start'))
    .description('Start an agent (the firewall stack first, when the firewall is on).')
    .option('--json', 'print the result as JSON')
    .action((o: CommonOptions) =>
      guarded(!!o.json, async (ctx) => {
        const p = project(o);
        const agent = await agentOf(ctx, p, o, 'existing');
        printAction(await deps.platform.startAgent(ctx.rt, { project: p.name, agent }, { projectRules: p.rules }), !!o.json);
      }),
    );

  const seconds = (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 3600) throw new InvalidArgumentError('whole seconds from 0 to 3600.');
    return n;
  };

  for (const verb of ['stop', 'restart'] as const) {
    common(program.command(verb))
      .description(verb === 'stop' ? 'Stop an agent: SIGTERM, then SIGKILL after --time seconds.' : 'Stop an agent, then start it again.')
      .option('-t, --time <seconds>', 'seconds to wait for the agent to exit before killing it', seconds, DEFAULT_STOP_TIMEOUT_SECONDS)
      .option('--json', 'print the result as JSON')
      .action((o: CommonOptions & { time: number }) =>
        guarded(!!o.json, async (ctx) => {
          const p = project(o);
          const ref = { project: p.name, agent: await agentOf(ctx, p, o, 'existing') };
          const r = verb === 'stop' ? await deps.platform.stopAgent(ctx.rt, ref, { timeoutSeconds: o.time }) : await deps.platform.restartAgent(ctx.rt, ref, { timeoutSeconds: o.time, projectRules: p.rules });
          printAction(r, !!o.json);
        }),
      );
  }

  common(program.command('rm'))
    .description("Remove an agent's container (the workspace folder is not touched). A running agent only with --force.")
    .option('-f, --force', 'remove it even when it is running (it is killed)')
    .option('--json', 'print the result as JSON')
    .action((o: CommonOptions & { force?: boolean }) =>
      guarded(!!o.json, async (ctx) => {
        const p = project(o);
        const agent = await agentOf(ctx, p, o, 'existing');
        const r = await deps.platform.removeAgent(ctx.rt, { project: p.name, agent }, { force: !!o.force });
        if (o.json) out(JSON.stringify(r, null, 2));
        else out(r.message);
      }),
    );

  // ---- logs, attach ------------------------------------------------------------------------------

  const tail = (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number of lines.');
    return n;
  };

  common(program.command('logs'))
    .description("An agent's output (what its terminal showed).")
    .option('-f, --follow', 'keep printing new output until the agent stops (or ctrl-c)')
    .option('-n, --tail <lines>', 'only the last N lines', tail)
    .option('-t, --timestamps', 'prefix each line with its time')
    .action((o: CommonOptions & { follow?: boolean; tail?: number; timestamps?: boolean }) => {
      const abort = new AbortController();
      const stopListening = deps.onInterrupt(() => abort.abort());
      return guarded(
        false,
        async (ctx) => {
          const p = project(o);
          const agent = await agentOf(ctx, p, o, 'existing');
          await deps.platform.agentLogs(ctx.rt, { project: p.name, agent }, {
            follow: !!o.follow,
            timestamps: !!o.timestamps,
            ...(o.tail !== undefined ? { tail: o.tail } : {}),
            write: (text) => void deps.stdout.write(text),
            signal: abort.signal,
          });
        },
        abort.signal,
      ).finally(stopListening);
    });

  common(program.command('attach'))
    .description("Connect this terminal to a running agent's terminal. Detach with ctrl-p ctrl-q.")
    .action((o: CommonOptions) =>
      guarded(false, async (ctx) => {
        const p = project(o);
        const agent = await agentOf(ctx, p, o, 'existing');
        if (deps.stdin.isTTY !== true) err('clawker: stdin is not a terminal: input is passed through as is, without raw mode');
        err(`attaching to ${ctx.rt.names.prefix}.${p.name}.${agent}; detach with ctrl-p ctrl-q`);
        reportAttach(await deps.platform.attachAgent(ctx.rt, { project: p.name, agent }, { stdin: deps.stdin, stdout: deps.stdout, detachKeys: DETACH_KEYS }), agent);
      }),
    );

  // ---- ps ----------------------------------------------------------------------------------------

  usageExitsTwo(program.command('ps'))
    .description("Agents of every project (running ones; -a: all), with their state and the firewall's view of them.")
    .option('-a, --all', 'stopped and created agents too')
    .option('--project-dir <dir>', "only this project's agents")
    .option('--json', 'print the agents as JSON')
    .action((o: { all?: boolean; projectDir?: string; json?: boolean }) =>
      guarded(!!o.json, async (ctx) => {
        const only = o.projectDir !== undefined ? project(o).name : undefined;
        const agents = await deps.platform.listAgents(ctx.rt, { all: !!o.all, ...(only !== undefined ? { project: only } : {}) });
        if (o.json) return out(JSON.stringify(agents, null, 2));
        if (agents.length === 0) {
          err(`no ${o.all ? '' : 'running '}agents${only ? ` of project ${only}` : ''}${o.all ? '' : ' (clawker ps -a shows stopped ones too)'}; clawker run starts one`);
          return;
        }
        for (const line of agentTable(agents)) out(line);
      }),
    );
}

/** `ps` as a table: PROJECT AGENT STATE STATUS FIREWALL WORKSPACE. */
export function agentTable(agents: readonly AgentSummary[]): string[] {
  const rows = [['PROJECT', 'AGENT', 'STATE', 'STATUS', 'FIREWALL', 'WORKSPACE'], ...agents.map((a) => [a.project, a.agent, a.state, a.status, a.firewall, a.workspace])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 2))).join('').trimEnd());
}
