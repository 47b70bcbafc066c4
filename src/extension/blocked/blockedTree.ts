/**
 * The Blocked view: per agent of this workspace, the domains it was blocked from, newest first,
 * with how often and when last. Entries the saved `.clawker.yaml` now allows are left out. Entry
 * items are the core's BlockedEntry objects, so commands on them get the entry as argument.
 */
import * as vscode from 'vscode';
import type { BlockedEntry } from '../../core/editor/blockedRequests';
import { editorCore } from '../lazy';
import type { BlockedModel } from './blockedModel';
import type { WorkspaceProjectFile } from './projectFile';

/** An agent's group of entries. */
export class AgentGroup {
  constructor(
    readonly agent: string,
    public entries: readonly BlockedEntry[],
  ) {}
}

export type BlockedNode = AgentGroup | BlockedEntry;

/** `×3 · 15:42:07`. */
export const entryDescription = (entry: BlockedEntry): string => `×${entry.count} · ${editorCore().clockTime(entry.lastTime)}`;

export class BlockedTree implements vscode.TreeDataProvider<BlockedNode> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  /** Stable group objects, so reveal() and expansion state survive a refresh. */
  private readonly groups = new Map<string, AgentGroup>();
  private shown: readonly BlockedEntry[] = [];

  constructor(
    private readonly model: BlockedModel,
    private readonly project: WorkspaceProjectFile,
  ) {}

  refresh(): void {
    this.changed.fire();
  }

  /** The entries the view shows now. */
  get visible(): readonly BlockedEntry[] {
    return this.shown;
  }

  async getChildren(node?: BlockedNode): Promise<BlockedNode[]> {
    if (node) return node instanceof AgentGroup ? [...node.entries] : [];
    const entries = this.model.entries();
    if (entries.length > 0) {
      const policy = await this.project.savedPolicy();
      this.shown = entries.filter((e) => editorCore().stillBlocked(e, policy));
    } else this.shown = [];
    void vscode.commands.executeCommand('setContext', 'clawker.blockedCount', this.shown.length);
    const byAgent = new Map<string, BlockedEntry[]>();
    for (const e of this.shown) byAgent.set(e.agent, [...(byAgent.get(e.agent) ?? []), e]);
    for (const agent of this.groups.keys()) if (!byAgent.has(agent)) this.groups.delete(agent);
    return [...byAgent.keys()].sort().map((agent) => {
      const group = this.groups.get(agent) ?? new AgentGroup(agent, []);
      group.entries = byAgent.get(agent)!;
      this.groups.set(agent, group);
      return group;
    });
  }

  getParent(node: BlockedNode): BlockedNode | undefined {
    return node instanceof AgentGroup ? undefined : this.groups.get(node.agent);
  }

  getTreeItem(node: BlockedNode): vscode.TreeItem {
    if (node instanceof AgentGroup) {
      const item = new vscode.TreeItem(node.agent, vscode.TreeItemCollapsibleState.Expanded);
      item.id = `blocked.agent:${node.agent}`;
      item.description = node.entries.length === 1 ? '1 domain' : `${node.entries.length} domains`;
      item.iconPath = new vscode.ThemeIcon('vm');
      item.contextValue = 'blocked.agent';
      return item;
    }
    const core = editorCore();
    const item = new vscode.TreeItem(node.domain, vscode.TreeItemCollapsibleState.None);
    item.id = `blocked:${node.key}`;
    item.description = entryDescription(node);
    const lines = [
      `**${node.domain}** — agent \`${node.agent}\``,
      `Blocked ${node.count === 1 ? 'once' : `${node.count} times`}: ${core.howBlocked(node)}`,
      `First ${core.clockTime(node.firstTime)}, last ${core.clockTime(node.lastTime)}`,
      ...(node.method && node.path ? [`Last request: \`${node.method} ${node.path}\`${node.status !== undefined ? ` → ${node.status}` : ''}`] : []),
    ];
    item.tooltip = new vscode.MarkdownString(lines.join('  \n'));
    item.iconPath = new vscode.ThemeIcon('circle-slash', new vscode.ThemeColor('problemsWarningIcon.foreground'));
    item.contextValue = 'blocked.entry';
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
