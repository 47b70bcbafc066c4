/**
 * The Firewall Rules view: the effective policy as `clawker firewall list --json` computes it
 * (built-in, project and runtime layers merged the one way the firewall merges them), grouped by
 * destination, each rule marked with its origin, path rules beneath. Add and remove run the CLI's
 * verbs; project rules are edited in `.clawker.yaml`.
 */
import * as vscode from 'vscode';
import { isProjectFilePath } from '../projectDir';
import type { ClawkerCli } from '../stack/contracts';
import { type ListedPathRule, type ListedRule, ruleDescription, shownOrigin, splitBuiltIn } from './ruleGroups';

type Group = { readonly dst: string; readonly rules: readonly ListedRule[] };

type Node =
  | { readonly kind: 'builtIn'; readonly groups: readonly Group[] }
  | { readonly kind: 'destination'; readonly dst: string; readonly rules: readonly ListedRule[] }
  | { readonly kind: 'rule'; readonly rule: ListedRule }
  | { readonly kind: 'path'; readonly rule: ListedRule; readonly path: ListedPathRule };

const ruleIcon = (r: ListedRule): vscode.ThemeIcon =>
  new vscode.ThemeIcon(r.origin === 'system' ? 'lock' : r.action === 'allow' ? (shownOrigin(r) === 'runtime' ? 'zap' : 'globe') : 'circle-slash');

class RulesTree implements vscode.TreeDataProvider<Node> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private rules: readonly ListedRule[] = [];
  /** Set after each listing: a warning the CLI printed (the project file has errors). */
  warning: string | undefined;

  constructor(
    private readonly cli: ClawkerCli,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  async reload(): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    const result = await this.cli.run(['firewall', 'list', '--json'], folder ? { cwd: folder.uri.fsPath } : {});
    try {
      const parsed = JSON.parse(result.stdout) as { projectFile?: string; rules: ListedRule[] };
      this.rules = parsed.rules;
      const warning = result.stderr.split('\n').find((l) => /warning|error/i.test(l));
      this.warning = warning?.replace(/^clawker: (warning: )?/, '') ?? (parsed.projectFile ? undefined : 'No .clawker.yaml in this workspace: only the built-in and runtime rules apply.');
      void vscode.commands.executeCommand('setContext', 'clawker.hasProjectFile', parsed.projectFile !== undefined && parsed.projectFile !== null);
    } catch {
      this.log.warn(`firewall list failed: ${result.stderr.trim()}`);
      this.rules = [];
      this.warning = result.stderr.trim().split('\n').pop();
    }
    this.changed.fire();
  }

  getChildren(node?: Node): Node[] {
    const nodesOf = (groups: readonly Group[]): Node[] => groups.map((g) => (g.rules.length === 1 ? { kind: 'rule', rule: g.rules[0]! } : { kind: 'destination', dst: g.dst, rules: g.rules }));
    if (!node) {
      const { own, builtIn } = splitBuiltIn(this.rules);
      return [...nodesOf(own), ...(builtIn.length ? [{ kind: 'builtIn', groups: builtIn } as const] : [])];
    }
    if (node.kind === 'builtIn') return nodesOf(node.groups);
    if (node.kind === 'destination') return node.rules.map((rule) => ({ kind: 'rule', rule }));
    if (node.kind === 'rule') return (node.rule.path_rules ?? []).map((path) => ({ kind: 'path', rule: node.rule, path }));
    return [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === 'builtIn') {
      const item = new vscode.TreeItem('Built-in', vscode.TreeItemCollapsibleState.Collapsed);
      item.id = 'clawker.rules.builtIn';
      item.description = `${node.groups.length} destinations Claude Code needs`;
      item.tooltip = 'Rules every agent gets (the spec\'s built-in table). They cannot be removed.';
      item.iconPath = new vscode.ThemeIcon('lock');
      item.contextValue = 'builtIn';
      return item;
    }
    if (node.kind === 'destination') {
      const item = new vscode.TreeItem(node.dst, vscode.TreeItemCollapsibleState.Expanded);
      item.description = `${node.rules.length} rules`;
      item.iconPath = new vscode.ThemeIcon('globe');
      item.contextValue = 'destination';
      return item;
    }
    if (node.kind === 'path') {
      const p = node.path;
      const item = new vscode.TreeItem(p.path, vscode.TreeItemCollapsibleState.None);
      item.description = `${p.action}${p.methods?.length ? ` ${p.methods.join(', ')}` : ' (all methods)'}`;
      item.iconPath = new vscode.ThemeIcon(p.action === 'allow' ? 'pass' : 'circle-slash');
      item.contextValue = `path.${node.rule.origin}`;
      return item;
    }
    const r = node.rule;
    const hasPaths = (r.path_rules?.length ?? 0) > 0;
    const item = new vscode.TreeItem(r.dst, hasPaths ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    item.description = ruleDescription(r);
    item.iconPath = ruleIcon(r);
    item.tooltip = new vscode.MarkdownString(
      [
        `**${r.dst}** ${r.proto} port ${r.port}: ${r.action}`,
        r.origin === 'system'
          ? 'Built in (what Claude Code needs); cannot be removed.'
          : r.origin === 'project'
            ? 'From `.clawker.yaml` (not yet applied: saving the file or **Clawker: Apply .clawker.yaml** syncs it).'
            : r.alsoInProjectFile
              ? 'From `.clawker.yaml`, synced into the rule store (the copy in force). Remove it from the file and with **Clawker: Remove a Runtime Rule…**.'
              : 'Runtime rule (`clawker firewall add`), kept in the rule store.',
        hasPaths ? `Paths not listed: ${r.path_default ?? 'deny'}` : '',
      ]
        .filter(Boolean)
        .join('  \n'),
    );
    item.contextValue = `rule.${r.origin}${r.alsoInProjectFile ? '.synced' : ''}`;
    return item;
  }
}

export function registerRulesView(context: vscode.ExtensionContext, cli: ClawkerCli, log: vscode.LogOutputChannel): void {
  const tree = new RulesTree(cli, log);
  const view = vscode.window.createTreeView('clawker.rules', { treeDataProvider: tree });
  let pending: NodeJS.Timeout | undefined;
  const reload = (): void => {
    if (pending) clearTimeout(pending);
    pending = setTimeout(() => {
      void tree.reload().then(() => {
        view.message = tree.warning;
      });
    }, 150);
  };
  const watcher = vscode.workspace.createFileSystemWatcher('{**/.clawker.yaml,**/.clawker/clawker.yaml}');
  context.subscriptions.push(
    view,
    watcher,
    watcher.onDidChange(reload),
    watcher.onDidCreate(reload),
    watcher.onDidDelete(reload),
    vscode.workspace.onDidSaveTextDocument((d) => isProjectFilePath(d.uri.path) && reload()),
    vscode.commands.registerCommand('clawker.rules.refresh', reload),
    vscode.commands.registerCommand('clawker.rules.remove', (node?: Node) =>
      vscode.commands.executeCommand('clawker.firewall.remove', node && node.kind === 'rule' ? node.rule : undefined),
    ),
    view.onDidChangeVisibility(() => view.visible && reload()),
  );
  if (view.visible) reload();
}
