/**
 * The agent verbs of the CLI as palette commands and Agents-view actions: run, create, start, stop,
 * restart, remove, logs, attach, list. Each runs the bundled CLI in the agent's project folder.
 */
import * as vscode from 'vscode';
import { DEFAULT_AGENT_NAME } from '../../core/agents/agentNames';
import type { AgentSummary } from '../../core/agents/lifecycle';
import type { AgentDirectory, ClawkerCli, StackStatus } from '../stack/contracts';
import { pickAgent, pickProjectFolder, validateAgentName } from './pickers';
import { runVerb } from './runVerb';

export interface AgentCommandDeps {
  readonly cli: ClawkerCli;
  readonly agents: AgentDirectory;
  readonly status: StackStatus;
  readonly log: vscode.LogOutputChannel;
  /** Refuses (with a message) in an untrusted workspace; true when the action may go on. */
  readonly trusted: () => boolean;
}

/** `--agent A --project-dir W`: how the CLI names an existing agent of any project. */
const target = (a: AgentSummary): string[] => ['--agent', a.agent, '--project-dir', a.workspace];

export function registerAgentCommands(context: vscode.ExtensionContext, d: AgentCommandDeps): void {
  const afterChange = async (): Promise<void> => {
    await Promise.all([d.agents.refresh(), d.status.refresh()]);
  };

  /** run/create: the name asked for, the work shown with progress (the image may be built). */
  const createOrRun = async (verb: 'run' | 'create'): Promise<void> => {
    if (!d.trusted()) return;
    const folder = await pickProjectFolder();
    if (!folder) return;
    const existing = new Set(d.agents.all.filter((a) => a.workspace === folder.uri.fsPath).map((a) => a.agent));
    const agent = await vscode.window.showInputBox({
      title: verb === 'run' ? 'Run an agent' : 'Create an agent',
      prompt: `The agent's name, for the project in folder ${folder.name} (its container is <stack>.<project>.<agent>)`,
      value: existing.has(DEFAULT_AGENT_NAME) && verb === 'create' ? '' : DEFAULT_AGENT_NAME,
      validateInput: validateAgentName,
    });
    if (!agent) return;
    const args = verb === 'run' ? ['run', '-d', '--agent', agent, '--json'] : ['create', '--agent', agent, '--json'];
    const done = await runVerb(d.cli, d.log, args, {
      title: `${verb === 'run' ? 'Starting' : 'Creating'} agent ${agent}`,
      cwd: folder.uri.fsPath,
      long: true,
      done: () => undefined,
    });
    await afterChange();
    if (!done) return;
    if (verb === 'run') {
      const attach = 'Attach Terminal';
      const choice = await vscode.window.showInformationMessage(`Agent ${agent} is running in ${folder.name}.`, attach);
      const started = d.agents.all.find((a) => a.agent === agent && a.workspace === folder.uri.fsPath);
      if (choice === attach && started) openTerminal(d.cli, started, 'attach');
    } else void vscode.window.showInformationMessage(`Agent ${agent} created in ${folder.name} (not started).`);
  };

  /** start/stop/restart/rm on one agent. */
  const action = (verb: 'start' | 'stop' | 'restart' | 'rm', title: string, filter: (a: AgentSummary) => boolean) => async (given?: unknown) => {
    if (!d.trusted()) return;
    const a = await pickAgent(d.agents, given, { placeHolder: `${title}: which agent?`, filter });
    if (!a) return;
    const args = [verb, ...target(a)];
    if (verb === 'rm') {
      const remove = 'Remove';
      const running = a.state === 'running';
      const ok = await vscode.window.showWarningMessage(
        `Remove agent ${a.agent} of ${a.project}?`,
        { modal: true, detail: `${running ? 'It is running and will be stopped. ' : ''}Its container is deleted; the workspace folder ${a.workspace} is not touched.` },
        remove,
      );
      if (ok !== remove) return;
      if (running) args.push('--force');
    }
    await runVerb(d.cli, d.log, args, { title: `${title} ${a.agent}`, long: verb === 'start' || verb === 'restart' });
    await afterChange();
  };

  const running = (a: AgentSummary): boolean => a.state === 'running';
  const stopped = (a: AgentSummary): boolean => a.state !== 'running';

  context.subscriptions.push(
    vscode.commands.registerCommand('clawker.agent.run', () => createOrRun('run')),
    vscode.commands.registerCommand('clawker.agent.create', () => createOrRun('create')),
    vscode.commands.registerCommand('clawker.agent.start', action('start', 'Starting', stopped)),
    vscode.commands.registerCommand('clawker.agent.stop', action('stop', 'Stopping', running)),
    vscode.commands.registerCommand('clawker.agent.restart', action('restart', 'Restarting', () => true)),
    vscode.commands.registerCommand('clawker.agent.remove', action('rm', 'Removing', () => true)),
    vscode.commands.registerCommand('clawker.agent.attach', async (given?: unknown) => {
      if (!d.trusted()) return;
      const a = await pickAgent(d.agents, given, { placeHolder: 'Attach a terminal to which agent?', filter: running });
      if (a) openTerminal(d.cli, a, 'attach');
    }),
    vscode.commands.registerCommand('clawker.agent.logs', async (given?: unknown) => {
      const a = await pickAgent(d.agents, given, { placeHolder: 'Whose output?' });
      if (a) openTerminal(d.cli, a, 'logs');
    }),
    vscode.commands.registerCommand('clawker.agent.list', async () => {
      await d.agents.refresh();
      await vscode.commands.executeCommand('clawker.agents.focus');
    }),
    vscode.commands.registerCommand('clawker.agents.refresh', afterChange),
    vscode.commands.registerCommand('clawker.checkDocker', async () => {
      await d.agents.refresh();
      if (d.agents.dockerError) {
        const install = 'Install Docker Engine';
        const choice = await vscode.window.showErrorMessage(`Docker is not reachable: ${d.agents.dockerError}`, install, 'Show Log');
        if (choice === install) void vscode.env.openExternal(vscode.Uri.parse('https://docs.docker.com/engine/install/'));
        else if (choice) d.log.show();
      } else void vscode.window.showInformationMessage(`Docker is reachable: ${d.agents.all.length} agent container${d.agents.all.length === 1 ? '' : 's'} of this stack.`);
    }),
  );
}

/** A terminal on the agent: `clawker attach` (detach with ctrl-p ctrl-q) or `clawker logs -f`. */
function openTerminal(cli: ClawkerCli, a: AgentSummary, what: 'attach' | 'logs'): void {
  const { shellPath, shellArgs, env } = cli.terminalCommand(what === 'attach' ? ['attach', ...target(a)] : ['logs', '-f', ...target(a)]);
  const terminal = vscode.window.createTerminal({
    name: `${what === 'attach' ? 'agent' : 'logs'}: ${a.agent} (${a.project})`,
    shellPath,
    shellArgs,
    env,
    cwd: a.workspace,
    iconPath: new vscode.ThemeIcon(what === 'attach' ? 'vm' : 'output'),
  });
  terminal.show();
}
