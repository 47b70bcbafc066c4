import * as vscode from 'vscode';
import { loadProject } from '../../core/config/load';
import { formatDestination } from '../../core/firewall/destination';
import { formatPortRange } from '../../core/firewall/port';
import type { NormalizedRule } from '../../core/firewall/rule';
import { Policy } from '../../core/policy/policy';
import { findProjectFiles } from '../projectFiles';

type Node = { kind: 'rule'; rule: NormalizedRule } | { kind: 'path'; rule: NormalizedRule; index: number };

/**
 * The firewall rules a project's agents get: the policy's merged rules, built-in first. Shows
 * nothing while the file has errors (nothing would be applied either) and says so.
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
    if (!file) return this.show('no-config', []);
    const loaded = loadProject(new TextDecoder().decode(await vscode.workspace.fs.readFile(file)));
    if (loaded.failed) return this.show('errors', []);
    return this.show('ok', new Policy({ project: loaded.rules }).rules.map((rule) => ({ kind: 'rule', rule })));
  }

  /** Which welcome text the view shows when it is empty (`clawker.rulesState` in package.json). */
  private show(state: 'no-config' | 'errors' | 'ok', nodes: Node[]): Node[] {
    void vscode.commands.executeCommand('setContext', 'clawker.rulesState', state);
    return nodes;
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
