import * as vscode from 'vscode';
import { loadProject } from '../../core/config/load';
import { formatDestination } from '../../core/firewall/destination';
import { formatPortRange } from '../../core/firewall/port';
import type { NormalizedRule } from '../../core/firewall/rule';
import { SYSTEM_RULES } from '../../core/firewall/systemRules';
import { findProjectFiles } from '../projectFiles';

type Node = { kind: 'rule'; rule: NormalizedRule } | { kind: 'path'; rule: NormalizedRule; index: number };

/**
 * The firewall rules a project's agents get: built-in rules first, then the project's, as the core
 * merges them. Shows nothing while the file has errors (nothing would be applied either).
 */
class RulesTree implements vscode.TreeDataProvider<Node> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;

  refresh(): void {
    this.changed.fire();
  }

  async getChildren(node?: Node): Promise<Node[]> {
    if (node) return node.kind === 'rule' ? node.rule.pathRules.map((_, index) => ({ kind: 'path', rule: node.rule, index })) : [];
    const [file] = await findProjectFiles();
    if (!file) return [];
    const loaded = loadProject(new TextDecoder().decode(await vscode.workspace.fs.readFile(file)));
    if (loaded.failed) return [];
    return [...SYSTEM_RULES, ...loaded.rules].map((rule) => ({ kind: 'rule', rule }));
  }

  getTreeItem(node: Node): vscode.TreeItem {
    const { rule } = node;
    if (node.kind === 'path') {
      const pr = rule.pathRules[node.index]!;
      const item = new vscode.TreeItem(pr.path);
      item.description = `${pr.action}${pr.methods.length ? ` ${pr.methods.join(', ')}` : ''}`;
      item.iconPath = new vscode.ThemeIcon(pr.action === 'allow' ? 'pass' : 'circle-slash');
      return item;
    }
    const item = new vscode.TreeItem(
      formatDestination(rule.dst),
      rule.pathRules.length ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None,
    );
    item.description = `${rule.proto}:${formatPortRange(rule.port)} · ${rule.action} · ${rule.origin}`;
    item.iconPath = new vscode.ThemeIcon(rule.origin === 'system' ? 'lock' : rule.action === 'allow' ? 'globe' : 'circle-slash');
    item.tooltip = rule.pathRules.length ? `Paths not listed: ${rule.pathDefault}` : undefined;
    item.contextValue = `rule.${rule.origin}`;
    return item;
  }
}

export function registerRulesView(context: vscode.ExtensionContext): void {
  const tree = new RulesTree();
  const watcher = vscode.workspace.createFileSystemWatcher('{**/.clawker.yaml,**/.clawker/clawker.yaml}');
  watcher.onDidChange(() => tree.refresh());
  watcher.onDidCreate(() => tree.refresh());
  watcher.onDidDelete(() => tree.refresh());
  context.subscriptions.push(watcher, vscode.window.registerTreeDataProvider('clawker.rules', tree));
}
