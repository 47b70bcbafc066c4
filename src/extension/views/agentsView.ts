/**
 * The Agents view: every agent container of this stack, this workspace's first, with its container
 * state and the firewall's view of it. Actions come from package.json menus keyed on contextValue
 * (`agent.<running|stopped>.<firewall state>`). Empty states are welcome views driven by
 * `clawker.dockerState` and `clawker.agentCount`.
 */
import { resolve } from 'node:path';
import * as vscode from 'vscode';
import type { AgentSummary } from '../../core/agents/lifecycle';
import type { AgentDirectory, StackStatus } from '../stack/contracts';

const REFRESH_WHILE_VISIBLE_MS = 15_000;

/** `web · running · enrolled`: the project, the container, the firewall (short: the view is narrow). */
export function agentDescription(a: AgentSummary, bypassLeft?: string): string {
  const firewall = a.state !== 'running' ? '' : a.firewall === 'bypassed' && bypassLeft ? ` · bypassed ${bypassLeft}` : ` · ${a.firewall}`;
  return `${a.project} · ${a.state}${firewall}`;
}

function iconOf(a: AgentSummary): vscode.ThemeIcon {
  if (a.state !== 'running') return new vscode.ThemeIcon('debug-stop', new vscode.ThemeColor('disabledForeground'));
  if (a.firewall === 'bypassed' || a.firewall === 'disabled' || a.firewall === 'off') return new vscode.ThemeIcon('unlock', new vscode.ThemeColor('problemsWarningIcon.foreground'));
  if (a.firewall === 'enrolled') return new vscode.ThemeIcon('vm-running', new vscode.ThemeColor('testing.iconPassed'));
  return new vscode.ThemeIcon('vm-running');
}

class AgentsTree implements vscode.TreeDataProvider<AgentSummary> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(
    private readonly agents: AgentDirectory,
    private readonly status: StackStatus,
  ) {}

  refresh(): void {
    this.changed.fire();
  }

  getChildren(node?: AgentSummary): AgentSummary[] {
    if (node) return [];
    const mine = new Set(this.agents.ofWorkspace().map((a) => a.id));
    return [...this.agents.all].sort((a, b) => Number(mine.has(b.id)) - Number(mine.has(a.id)) || a.project.localeCompare(b.project) || a.agent.localeCompare(b.agent));
  }

  getTreeItem(a: AgentSummary): vscode.TreeItem {
    const inWorkspace = this.agents.ofWorkspace().some((w) => w.id === a.id);
    const item = new vscode.TreeItem(a.agent, vscode.TreeItemCollapsibleState.None);
    item.id = a.id;
    const until = this.status.current?.agents.find((s) => s.container === a.id)?.bypassUntil;
    const left = until ? Math.max(0, Math.round((Date.parse(until) - Date.now()) / 1000)) : undefined;
    item.description = agentDescription(a, left !== undefined ? `${Math.floor(left / 60)}m${String(left % 60).padStart(2, '0')}s` : undefined);
    item.tooltip = new vscode.MarkdownString(
      [`**${a.agent}** — project \`${a.project}\`${inWorkspace ? ' (this workspace)' : ''}`, `container \`${a.name}\` (${a.id.slice(0, 12)})`, `${a.status}`, `image \`${a.image}\``, `workspace \`${a.workspace}\``, `firewall: ${a.firewall}`].join('  \n'),
    );
    item.iconPath = iconOf(a);
    item.contextValue = `agent.${a.state === 'running' ? 'running' : 'stopped'}.${a.firewall.replace(/\s+/g, '-')}`;
    return item;
  }
}

export function registerAgentsView(context: vscode.ExtensionContext, agents: AgentDirectory, status: StackStatus): void {
  const tree = new AgentsTree(agents, status);
  const view = vscode.window.createTreeView('clawker.agents', { treeDataProvider: tree, showCollapseAll: false });
  const updateContext = (): void => {
    const dockerState = agents.dockerError ? 'unreachable' : 'ok';
    void vscode.commands.executeCommand('setContext', 'clawker.dockerState', dockerState);
    void vscode.commands.executeCommand('setContext', 'clawker.agentCount', agents.all.length);
    tree.refresh();
  };
  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    if (timer) clearInterval(timer);
    timer = view.visible ? setInterval(() => void agents.refresh(), REFRESH_WHILE_VISIBLE_MS) : undefined;
  };
  let lastStates = '';
  context.subscriptions.push(
    view,
    agents.onDidChange(updateContext),
    // The control plane's view of the agents changed (enrolled, bypass opened or closed): list again.
    status.onDidChange((s) => {
      const states = JSON.stringify(s?.agents.map((a) => [a.container, a.state]) ?? null);
      if (states !== lastStates) {
        lastStates = states;
        void agents.refresh();
      } else tree.refresh();
    }),
    view.onDidChangeVisibility(() => {
      schedule();
      if (view.visible) void agents.refresh();
    }),
    { dispose: () => timer && clearInterval(timer) },
  );
  schedule();
}

/** True when `folder` is the agent's workspace (the CLI runs there for this agent's verbs). */
export const isAgentOf = (a: AgentSummary, folder: string): boolean => resolve(a.workspace) === resolve(folder);
