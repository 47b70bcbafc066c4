/** The questions palette commands ask: which folder, which agent, how long. */
import * as vscode from 'vscode';
import { agentNameProblem } from '../../core/agents/agentNames';
import type { AgentSummary } from '../../core/agents/lifecycle';
import { parseDuration } from '../../core/duration';
import type { AgentDirectory } from '../stack/contracts';

/** The project folder a verb runs in: the only folder, else the one holding `.clawker.yaml`, else asked. */
export async function pickProjectFolder(): Promise<vscode.WorkspaceFolder | undefined> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (folders.length === 0) {
    void vscode.window.showWarningMessage('Open a folder first: an agent works on a project folder, mounted at /workspace.');
    return undefined;
  }
  if (folders.length === 1) return folders[0];
  const withConfig: vscode.WorkspaceFolder[] = [];
  for (const f of folders) {
    const found = await vscode.workspace.findFiles(new vscode.RelativePattern(f, '{.clawker.yaml,.clawker/clawker.yaml}'), undefined, 1);
    if (found.length) withConfig.push(f);
  }
  if (withConfig.length === 1) return withConfig[0];
  return vscode.window.showWorkspaceFolderPick({ placeHolder: 'The project the agent works on' });
}

/** An agent to act on: the tree's item, else one picked (only those `filter` accepts). */
export async function pickAgent(
  agents: AgentDirectory,
  given: unknown,
  o: { readonly placeHolder: string; readonly filter?: (a: AgentSummary) => boolean },
): Promise<AgentSummary | undefined> {
  if (isAgentSummary(given)) return given;
  // The status bar names the container (an id): exact even when two projects have an agent `dev`.
  if (given && typeof given === 'object' && typeof (given as { container?: unknown }).container === 'string') {
    const id = (given as { container: string }).container;
    const found = agents.all.find((a) => a.id === id || a.name === id);
    if (found) return found;
  }
  if (given && typeof given === 'object' && typeof (given as { agent?: unknown }).agent === 'string') {
    const named = agents.all.filter((a) => a.agent === (given as { agent: string }).agent);
    const mine = named.filter((a) => agents.ofWorkspace().includes(a));
    if ((mine.length || named.length) === 1 || mine.length === 1) return (mine[0] ?? named[0])!;
  }
  await agents.refresh();
  const candidates = agents.all.filter(o.filter ?? (() => true));
  if (candidates.length === 0) {
    const run = 'Run an Agent';
    const choice = await vscode.window.showInformationMessage('No agent to choose from.', run);
    if (choice === run) await vscode.commands.executeCommand('clawker.agent.run');
    return undefined;
  }
  const mine = new Set(agents.ofWorkspace().map((a) => a.id));
  const picked = await vscode.window.showQuickPick(
    candidates.map((a) => ({ label: a.agent, description: `${a.project}${mine.has(a.id) ? ' (this workspace)' : ''} · ${a.state}`, detail: a.status, agent: a })),
    { placeHolder: o.placeHolder, matchOnDescription: true },
  );
  return picked?.agent;
}

function isAgentSummary(x: unknown): x is AgentSummary {
  return !!x && typeof x === 'object' && typeof (x as AgentSummary).id === 'string' && typeof (x as AgentSummary).workspace === 'string' && typeof (x as AgentSummary).agent === 'string';
}

/** An agent name as clawker accepts it (the CLI's own check). */
export function validateAgentName(value: string): string | undefined {
  return agentNameProblem(value);
}

/** `30s`, `5m`, `1h30m`: what `clawker firewall bypass` accepts (the CLI's own parser). */
export function validateDuration(value: string): string | undefined {
  const parsed = parseDuration(value);
  return 'error' in parsed ? parsed.error : undefined;
}
