/**
 * `clawker run | create | start | stop | restart | rm | logs | attach | ps`: what the verbs make of
 * their arguments, the settings and the project file, and how they report. The platform functions
 * are fakes that record their calls; nothing here talks to Docker.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import { Command, CommanderError } from 'commander';
import type Docker from 'dockerode';
import { type AgentCliDeps, type AgentPlatform, agentTable, registerAgentCommands } from '../../src/cli/commands/agents';
import { DEFAULT_PROJECT_SETTINGS } from '../../src/core/agents/agentContainerSpec';
import type { AgentSummary } from '../../src/core/agents/lifecycle';
import { formatEngineAddress } from '../../src/core/engine/engineAddress';
import { AgentLifecycleError, type AgentRuntime } from '../../src/platform/docker/agentContainers';

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

const summary = (agent: string, over: Partial<AgentSummary> = {}): AgentSummary => ({
  id: agent.padEnd(64, '0').slice(0, 64),
  name: `clawker.web-app.${agent}`,
  agent,
  project: 'web-app',
  workspace: '/src/web-app',
  state: 'running',
  status: 'Up 2 minutes',
  image: 'clawker-agent:latest',
  firewall: 'enrolled',
  ...over,
});

interface Call {
  readonly fn: string;
  readonly rt: AgentRuntime;
  readonly args: unknown[];
}

interface Setup {
  yaml?: string;
  settings?: string;
  tty?: boolean;
  /** The project's agents, as listAgents and findAgent see them. */
  agents?: AgentSummary[];
  platform?: Partial<AgentPlatform>;
  /** Extra environment (DOCKER_HOST, DOCKER_CONTEXT…). */
  env?: Record<string, string>;
}

function harness(setup: Setup = {}) {
  const root = mkdtempSync(join(tmpdir(), 'clawker-agents-cli-'));
  made.push(root);
  const projectDir = join(root, 'Web App');
  mkdirSync(projectDir);
  if (setup.yaml !== undefined) writeFileSync(join(projectDir, '.clawker.yaml'), setup.yaml);
  const settingsFile = join(root, 'settings.yaml');
  if (setup.settings !== undefined) writeFileSync(settingsFile, setup.settings);
  const calls: Call[] = [];
  const agents = setup.agents ?? [];
  const record = (fn: string) => (rt: AgentRuntime, ...args: unknown[]) => void calls.push({ fn, rt, args });
  const result = (agent: string, message: string) => ({ agent: summary(agent), changed: true, message, warnings: [] });
  const platform: AgentPlatform = {
    listAgents: async (rt, o) => {
      record('listAgents')(rt, o);
      return agents;
    },
    findAgent: async (rt, ref) => {
      record('findAgent')(rt, ref);
      return agents.find((a) => a.agent === ref.agent);
    },
    createAgent: async (rt, o) => {
      record('createAgent')(rt, o);
      return { id: 'c'.repeat(64), name: `clawker.${o.project}.${o.agent}`, image: 'clawker-agent:latest', imageBuilt: false, firewall: rt.firewallEnabled, warnings: [] };
    },
    startAgent: async (rt, ref, o) => {
      record('startAgent')(rt, ref, o);
      return result(ref.agent, `started clawker.${ref.project}.${ref.agent}`);
    },
    stopAgent: async (rt, ref, o) => {
      record('stopAgent')(rt, ref, o);
      return result(ref.agent, `stopped clawker.${ref.project}.${ref.agent}`);
    },
    restartAgent: async (rt, ref, o) => {
      record('restartAgent')(rt, ref, o);
      return result(ref.agent, `restarted clawker.${ref.project}.${ref.agent}`);
    },
    removeAgent: async (rt, ref, o) => {
      record('removeAgent')(rt, ref, o);
      return { id: 'x', name: `clawker.${ref.project}.${ref.agent}`, message: `removed clawker.${ref.project}.${ref.agent}` };
    },
    agentLogs: async (rt, ref, o) => {
      record('agentLogs')(rt, ref, o);
      o.write('hello from the agent\n');
    },
    attachAgent: async (rt, ref, o) => {
      record('attachAgent')(rt, ref, o);
      return { detached: true, agent: summary(ref.agent), warnings: [] };
    },
    ...setup.platform,
  };
  const stdin = Object.assign(new PassThrough(), { isTTY: setup.tty ?? false });
  const stdout = Object.assign(new PassThrough(), { isTTY: false });
  let written = '';
  stdout.on('data', (c: Buffer) => (written += c.toString()));

  async function run(...args: string[]) {
    let out = '';
    let err = '';
    let code = 0;
    const deps: AgentCliDeps = {
      platform,
      docker: (engine) => ({ engine: formatEngineAddress(engine.address), source: engine.source }) as unknown as Docker,
      env: { CLAWKER_SETTINGS: settingsFile, CLAWKER_DATA_DIR: join(root, 'data'), HOME: root, DOCKER_CONFIG: join(root, '.docker'), ...setup.env },
      cwd: () => projectDir,
      homeDir: root,
      stdin,
      stdout,
      out: (line) => void (out += `${line}\n`),
      err: (line) => void (err += `${line}\n`),
      setExitCode: (c) => void (code = c),
      exit: (e) => {
        throw e;
      },
      onInterrupt: () => () => undefined,
    };
    const program = new Command('clawker').exitOverride().configureOutput({ writeOut: (s) => void (out += s), writeErr: (s) => void (err += s) });
    registerAgentCommands(program, deps);
    try {
      await program.parseAsync(['node', 'clawker', ...args]);
    } catch (e) {
      if (!(e instanceof CommanderError)) throw e;
      code = e.exitCode === 0 ? 0 : 2; // what the real exit does
    }
    return { code, out, err, written: () => written };
  }

  const only = (fn: string) => calls.filter((c) => c.fn === fn);
  return { run, calls, only, projectDir: realpathSync(projectDir), root };
}

describe('run', () => {
  test('-d without a project file: created as dev of the folder-named project, with the defaults, then started', async () => {
    const h = harness();
    const r = await h.run('run', '-d');
    assert.equal(r.code, 0, r.err);
    const [create] = h.only('createAgent');
    const o = create!.args[0] as Record<string, unknown>;
    assert.equal(o.project, 'web-app');
    assert.equal(o.agent, 'dev');
    assert.equal(o.workspace, h.projectDir);
    assert.deepEqual(o.settings, DEFAULT_PROJECT_SETTINGS);
    assert.equal(o.cmd, undefined, "no command: the image's claude");
    assert.equal(o.homeDir, h.root, 'the home folder is passed, so it is refused as a workspace');
    assert.equal(create!.rt.firewallEnabled, true, 'the firewall is on by default');
    assert.equal(create!.rt.names.prefix, 'clawker');
    assert.equal(create!.rt.dataDir, join(h.root, 'data'));
    assert.deepEqual(h.only('startAgent').map((c) => c.args[0]), [{ project: 'web-app', agent: 'dev' }]);
    assert.equal(h.only('attachAgent').length, 0);
    assert.match(r.out, /^clawker\.web-app\.dev\nstarted clawker\.web-app\.dev\n$/);
    assert.match(r.err, /project "Web App" is called web-app/);
  });

  test('the command after -- is the container command; operands without -- are a usage error', async () => {
    const h = harness();
    assert.equal((await h.run('run', '-d', '--agent', 'shell', '--', 'bash', '-l', '--norc')).code, 0);
    assert.deepEqual((h.only('createAgent')[0]!.args[0] as { cmd: string[] }).cmd, ['bash', '-l', '--norc']);
    const bad = await h.run('run', '-d', 'bash');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /put the agent's command after --, e\.g\. clawker run -- bash/);
  });

  test('stdin a terminal: attach (which starts it) and say how to detach; an exited command makes the exit code 1', async () => {
    const h = harness({ tty: true });
    const r = await h.run('run');
    assert.equal(r.code, 0, r.err);
    const [attach] = h.only('attachAgent');
    assert.equal((attach!.args[1] as { start: boolean }).start, true);
    assert.equal((attach!.args[1] as { detachKeys: string }).detachKeys, 'ctrl-p,ctrl-q');
    assert.equal(h.only('startAgent').length, 0, 'attachAgent starts it once attached');
    assert.match(r.err, /detach with ctrl-p ctrl-q/);
    assert.match(r.err, /detached from clawker\.web-app\.dev; it keeps running/);

    const exited = harness({ tty: true, platform: { attachAgent: async (_rt, ref) => ({ detached: false, agent: summary(ref.agent, { state: 'exited', exitCode: 3 }), warnings: [] }) } });
    const e = await exited.run('run');
    assert.equal(e.code, 1);
    assert.match(e.err, /exited \(code 3\)/);
  });

  test('stdin not a terminal: started without attaching, and said so', async () => {
    const h = harness({ tty: false });
    const r = await h.run('run');
    assert.equal(r.code, 0);
    assert.equal(h.only('attachAgent').length, 0);
    assert.match(r.err, /stdin is not a terminal: starting without attaching/);
  });

  test('an existing agent is started, not created; a command or --rebuild for it is refused with the next step', async () => {
    const h = harness({ agents: [summary('dev', { state: 'exited' })] });
    assert.equal((await h.run('run', '-d')).code, 0);
    assert.equal(h.only('createAgent').length, 0);
    assert.equal(h.only('startAgent').length, 1);
    const cmd = await h.run('run', '-d', '--', 'bash');
    assert.equal(cmd.code, 1);
    assert.match(cmd.err, /clawker: agent: clawker\.web-app\.dev exists; the command after -- applies only when an agent is created\n {2}next: remove it first \(clawker rm --agent dev\)/);
    const rebuild = await h.run('run', '-d', '--rebuild');
    assert.equal(rebuild.code, 1);
    assert.match(rebuild.err, /--rebuild applies only when an agent is created/);
  });

  test('-d --json: one JSON document on stdout, progress elsewhere', async () => {
    const h = harness();
    const r = await h.run('run', '-d', '--json', '--rebuild');
    assert.equal(r.code, 0, r.err);
    const doc = JSON.parse(r.out) as { created: { name: string }; message: string };
    assert.equal(doc.created.name, 'clawker.web-app.dev');
    assert.equal(doc.message, 'started clawker.web-app.dev');
    assert.equal((h.only('createAgent')[0]!.args[0] as { rebuild: boolean }).rebuild, true);
  });
});

describe('the project file and the settings', () => {
  test(".clawker.yaml: its name, agent.env and security settings and its firewall rules reach createAgent", async () => {
    const h = harness({ yaml: 'name: My API\nagent:\n  env:\n    FOO: bar\nsecurity:\n  cap_add: [SYS_PTRACE]\n  enable_host_proxy: false\n  firewall:\n    add_domains: [github.com]\n' });
    const r = await h.run('create', '--agent', 'rev');
    assert.equal(r.code, 0, r.err);
    const o = h.only('createAgent')[0]!.args[0] as { project: string; agent: string; settings: unknown; projectRules: { dst: { name: string } }[] };
    assert.equal(o.project, 'my-api');
    assert.equal(o.agent, 'rev');
    assert.deepEqual(o.settings, { env: { FOO: 'bar' }, dockerSocket: false, capAdd: ['SYS_PTRACE'], enableHostProxy: false });
    assert.ok(o.projectRules.some((rule) => rule.dst.name === 'github.com'));
    assert.equal(r.out, 'clawker.my-api.rev\n');
  });

  test('a project file with errors: nothing is touched, exit 1, the next step is clawker validate', async () => {
    const h = harness({ yaml: 'security:\n  docker_socket: maybe\n' });
    const r = await h.run('run', '-d');
    assert.equal(r.code, 1);
    assert.match(r.err, /docker_socket must be true or false/);
    assert.match(r.err, /clawker: configuration: .*\.clawker\.yaml has errors, so no agent was touched; fix them \(clawker validate /);
    assert.equal(h.calls.length, 0);
  });

  test('--project-dir: another folder; one that does not exist is a usage error', async () => {
    const h = harness();
    const other = join(h.root, 'other_proj');
    mkdirSync(other);
    assert.equal((await h.run('create', '--project-dir', other)).code, 0);
    assert.equal((h.only('createAgent')[0]!.args[0] as { project: string }).project, 'other-proj');
    const missing = await h.run('create', '--project-dir', join(h.root, 'nope'));
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--project-dir .*nope: ENOENT/);
  });

  test('settings.yaml: firewall.enable false reaches the platform; docker.socket (older name) is used; a broken file stops everything', async () => {
    const h = harness({ settings: 'firewall:\n  enable: false\ndocker:\n  socket: /run/user/1000/docker.sock\n' });
    assert.equal((await h.run('create')).code, 0);
    const rt = h.only('createAgent')[0]!.rt;
    assert.equal(rt.firewallEnabled, false);
    assert.deepEqual(rt.docker, { engine: 'unix:///run/user/1000/docker.sock', source: 'settings.yaml docker.socket' });

    const broken = harness({ settings: 'firewall:\n  enable: sometimes\n' });
    const r = await broken.run('create');
    assert.equal(r.code, 1);
    assert.match(r.err, /clawker: settings: .*settings\.yaml has errors/);
    assert.equal(broken.calls.length, 0);
  });
});

describe('which agent', () => {
  test('--agent is checked before anything happens (exit 2, with the reason)', async () => {
    const h = harness();
    const r = await h.run('start', '--agent', 'Dev');
    assert.equal(r.code, 2);
    assert.match(r.err, /upper-case letters; use "dev"/);
    assert.equal(h.only('startAgent').length, 0);
  });

  test('without --agent: the only agent; none is a failure (exit 1), several a usage error (exit 2)', async () => {
    const one = harness({ agents: [summary('rev')] });
    assert.equal((await one.run('stop')).code, 0);
    assert.deepEqual(one.only('stopAgent')[0]!.args, [{ project: 'web-app', agent: 'rev' }, { timeoutSeconds: 10 }]);

    const none = harness();
    const r0 = await none.run('start');
    assert.equal(r0.code, 1);
    assert.match(r0.err, /clawker: agent: the project web-app has no agent yet; create one with: clawker run/);

    const two = harness({ agents: [summary('b'), summary('a')] });
    const r2 = await two.run('logs');
    assert.equal(r2.code, 2);
    assert.match(r2.err, /2 agents \(a, b\): say which one with --agent NAME/);
    assert.equal(two.only('agentLogs').length, 0);
  });
});

describe('start, stop, restart, rm, logs, attach', () => {
  test('stop and restart -t SECONDS; a bad value is a usage error', async () => {
    const h = harness();
    assert.equal((await h.run('stop', '--agent', 'dev', '-t', '3')).code, 0);
    assert.deepEqual(h.only('stopAgent')[0]!.args[1], { timeoutSeconds: 3 });
    assert.equal((await h.run('restart', '--agent', 'dev', '--time', '0')).code, 0);
    assert.equal((h.only('restartAgent')[0]!.args[1] as { timeoutSeconds: number }).timeoutSeconds, 0);
    const bad = await h.run('stop', '--agent', 'dev', '-t', 'soon');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /whole seconds/);
  });

  test('start --json prints the action result', async () => {
    const h = harness();
    const r = await h.run('start', '--agent', 'dev', '--json');
    assert.equal(r.code, 0);
    assert.equal((JSON.parse(r.out) as { message: string }).message, 'started clawker.web-app.dev');
  });

  test('rm: force only with -f', async () => {
    const h = harness();
    await h.run('rm', '--agent', 'dev');
    await h.run('rm', '--agent', 'dev', '-f');
    assert.deepEqual(h.only('removeAgent').map((c) => c.args[1]), [{ force: false }, { force: true }]);
  });

  test('logs -f -n N -t; output goes to stdout as is', async () => {
    const h = harness();
    const r = await h.run('logs', '--agent', 'dev', '-f', '-n', '5', '-t');
    assert.equal(r.code, 0);
    const o = h.only('agentLogs')[0]!.args[1] as { follow: boolean; tail: number; timestamps: boolean };
    assert.deepEqual([o.follow, o.tail, o.timestamps], [true, 5, true]);
    assert.equal(r.written(), 'hello from the agent\n');
    assert.equal((await h.run('logs', '--agent', 'dev', '-n', 'all')).code, 2);
  });

  test('attach does not start the agent', async () => {
    const h = harness({ tty: true });
    assert.equal((await h.run('attach', '--agent', 'dev')).code, 0);
    assert.equal((h.only('attachAgent')[0]!.args[1] as { start?: boolean }).start, undefined);
  });
});

describe('ps', () => {
  test('running agents of every project by default; -a all; --project-dir one project; --json', async () => {
    const h = harness({ agents: [summary('dev'), summary('rev', { state: 'exited', status: 'Exited (0) 1 hour ago', firewall: 'not enrolled' })] });
    const table = await h.run('ps');
    assert.equal(table.code, 0);
    assert.deepEqual(h.only('listAgents')[0]!.args[0], { all: false });
    assert.match(table.out, /^PROJECT +AGENT +STATE +STATUS +FIREWALL +WORKSPACE\n/);
    assert.match(table.out, /web-app +rev +exited +Exited \(0\) 1 hour ago +not enrolled +\/src\/web-app/);
    await h.run('ps', '-a', '--project-dir', '.');
    assert.deepEqual(h.only('listAgents')[1]!.args[0], { all: true, project: 'web-app' });
    const json = await h.run('ps', '--json');
    assert.equal((JSON.parse(json.out) as AgentSummary[]).length, 2);
  });

  test('nothing to show: a hint on stderr, nothing on stdout', async () => {
    const h = harness();
    const r = await h.run('ps');
    assert.equal(r.out, '');
    assert.match(r.err, /no running agents \(clawker ps -a shows stopped ones too\); clawker run starts one/);
  });

  test('the table pads every column but the last', () => {
    assert.deepEqual(agentTable([summary('dev')]), ['PROJECT  AGENT  STATE    STATUS        FIREWALL  WORKSPACE', 'web-app  dev    running  Up 2 minutes  enrolled  /src/web-app']);
  });
});

describe('failures name the component and the next step', () => {
  test('a stale CA in the agent image: clawker run --rebuild', async () => {
    const h = harness({
      platform: {
        createAgent: async () => {
          throw new AgentLifecycleError('the agent image trusts an older firewall CA', 'agent image', 'rebuild it: clawker run --rebuild --agent dev', 'stale-ca');
        },
      },
    });
    const r = await h.run('run', '-d');
    assert.equal(r.code, 1);
    assert.match(r.err, /^clawker: agent image: the agent image trusts an older firewall CA\n {2}next: rebuild it: clawker run --rebuild --agent dev\n$/m);
  });

  test('the engine: DOCKER_HOST, then settings.yaml docker.host, then the docker context, then the default', async () => {
    const engineOf = async (setup: Setup) => {
      const h = harness(setup);
      const r = await h.run('ps');
      assert.equal(r.code, 0, r.err);
      return h.only('listAgents')[0]!.rt.docker as unknown;
    };
    const settings = 'docker:\n  host: tcp://10.1.2.3:2375\n  socket: /ignored.sock\n';
    assert.deepEqual(await engineOf({ settings, env: { DOCKER_HOST: 'unix:///from/env.sock' } }), { engine: 'unix:///from/env.sock', source: 'DOCKER_HOST' });
    assert.deepEqual(await engineOf({ settings }), { engine: 'tcp://10.1.2.3:2375', source: 'settings.yaml docker.host' });
    assert.deepEqual(await engineOf({}), { engine: 'unix:///var/run/docker.sock', source: 'the default' });
  });

  test('a DOCKER_HOST that is not an engine address stops the verb, naming the variable', async () => {
    const h = harness({ env: { DOCKER_HOST: 'localhost:2375' } });
    const r = await h.run('ps');
    assert.equal(r.code, 1);
    assert.match(r.err, /clawker: docker: DOCKER_HOST: 'localhost:2375' is not an engine address: expected unix:\/\/\/path, tcp:\/\/host:port/);
    assert.deepEqual(h.calls, []);
  });

  test('Docker not reachable: how to start it', async () => {
    const h = harness({
      platform: {
        listAgents: async () => {
          throw Object.assign(new Error('connect ECONNREFUSED /var/run/docker.sock'), { code: 'ECONNREFUSED' });
        },
      },
    });
    const r = await h.run('ps');
    assert.equal(r.code, 1);
    assert.match(r.err, /clawker: docker: cannot reach the Docker engine at unix:\/\/\/var\/run\/docker\.sock \(the default\) \(ECONNREFUSED\)\n {2}next: start the Docker engine/);
  });

  test('unknown options are usage errors (exit 2)', async () => {
    const h = harness();
    assert.equal((await h.run('run', '--detatch')).code, 2);
  });
});
