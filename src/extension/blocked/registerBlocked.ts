/**
 * Blocked requests in the editor: the Blocked view, the warnings on `.clawker.yaml` with their
 * "allow" quick fixes, the notification on a first block, and the commands behind them. All of it
 * follows one BlockedModel fed by the control plane's event stream.
 */
import { basename, dirname } from 'node:path';
import * as vscode from 'vscode';
import type { BlockedEntry } from '../../core/editor/blockedRequests';
import type { AgentDirectory, ClawkerCli, EgressFeed } from '../stack/contracts';
import type { RuntimeRules } from '../stack/runtimeRules';
import { editorCore } from '../lazy';
import { allowAndSave, pickAndAllow } from './allowEdits';
import { BlockedDiagnostics } from './blockedDiagnostics';
import { BlockedModel } from './blockedModel';
import { BlockedNotifier } from './blockedNotifier';
import { BlockedTree, type BlockedNode, entryDescription } from './blockedTree';
import { WorkspaceProjectFile } from './projectFile';
import { isProjectFilePath } from '../projectDir';

export interface BlockedDeps {
  readonly feed: EgressFeed;
  readonly agents: AgentDirectory;
  readonly cli: ClawkerCli;
  readonly log: vscode.LogOutputChannel;
  /** The rule store's runtime rules: a request they allow is not shown as blocked. */
  readonly runtimeRules: RuntimeRules;
}

/** Could this path be a project file? A cheap test before asking where the project file is. */
const mayBeProjectFile = (uri: vscode.Uri): boolean => isProjectFilePath(uri.path);

/** A command's argument: an entry (tree item), its key, or nothing (palette). */
function entryArgument(model: BlockedModel, arg: unknown): BlockedEntry | undefined {
  const key = typeof arg === 'string' ? arg : typeof arg === 'object' && arg !== null && typeof (arg as { key?: unknown }).key === 'string' ? (arg as BlockedEntry).key : undefined;
  return key !== undefined ? model.get(key) : undefined;
}

export function registerBlocked(context: vscode.ExtensionContext, deps: BlockedDeps): void {
  const { log } = deps;
  const project = new WorkspaceProjectFile(() => deps.runtimeRules.rules());
  const model = new BlockedModel(deps.agents);
  const tree = new BlockedTree(model, project);
  const diagnostics = new BlockedDiagnostics(model, project, log);
  const view = vscode.window.createTreeView<BlockedNode>('clawker.blocked', { treeDataProvider: tree });
  void vscode.commands.executeCommand('setContext', 'clawker.blockedCount', 0);

  const refresh = (): void => {
    tree.refresh();
    void diagnostics.update();
  };

  /** The Blocked view with the entry selected, then `.clawker.yaml` at its warning. */
  const show = async (entry: BlockedEntry): Promise<void> => {
    await vscode.commands.executeCommand('clawker.blocked.focus');
    try {
      await view.reveal(model.get(entry.key) ?? entry, { select: true, focus: false, expand: true });
    } catch {
      // No longer in the view (allowed meanwhile): the file still shows where it would go.
    }
    const uri = await project.locate();
    if (!uri) return;
    await diagnostics.update();
    const range = diagnostics.diagnosticFor(entry.key)?.range;
    await vscode.window.showTextDocument(uri, { preview: false, ...(range ? { selection: range } : {}) });
  };

  const notifier = new BlockedNotifier(project, { allow: (entry, title) => allowAndSave(project, entry, title, log), show }, log);

  const pickEntry = async (): Promise<BlockedEntry | undefined> => {
    const entries = model.entries();
    if (entries.length === 0) {
      void vscode.window.showInformationMessage("No blocked requests from this workspace's agents.");
      return undefined;
    }
    const core = editorCore();
    const picked = await vscode.window.showQuickPick(
      entries.map((entry) => ({ label: entry.domain, description: `${entry.agent} ${entryDescription(entry)}`, detail: core.diagnosticMessage(entry), entry })),
      { title: 'Allow a blocked domain', placeHolder: 'Which blocked request' },
    );
    return picked?.entry;
  };

  // A rule added or synced into the store (firewall add, refresh) allows too: look again.
  const storeWatcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(dirname(deps.runtimeRules.file)), basename(deps.runtimeRules.file)));
  context.subscriptions.push(
    storeWatcher,
    storeWatcher.onDidChange(refresh),
    storeWatcher.onDidCreate(refresh),
    project,
    model,
    tree,
    diagnostics,
    view,
    deps.feed.onEvent((event) => model.record(event)),
    model.onDidChange(refresh),
    model.onDidCreate((entry) => void notifier.consider(entry)),
    project.onDidChange(refresh),
    vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.contentChanges.length === 0 || !mayBeProjectFile(e.document.uri)) return;
      void project.isProjectFile(e.document.uri).then((yes) => yes && diagnostics.updateSoon());
    }),
    vscode.workspace.onDidSaveTextDocument(async (document) => {
      if (!mayBeProjectFile(document.uri) || !(await project.isProjectFile(document.uri))) return;
      // Saving applies the file: what it allows now is no longer blocked.
      const policy = project.policyOf(document.getText());
      model.prune((entry) => editorCore().stillBlocked(entry, policy));
      refresh();
    }),
    vscode.languages.registerCodeActionsProvider({ language: 'clawker-yaml' }, diagnostics, {
      providedCodeActionKinds: BlockedDiagnostics.providedCodeActionKinds,
    }),
    vscode.commands.registerCommand('clawker.blocked.allow', async (arg?: unknown) => {
      const entry = entryArgument(model, arg) ?? (arg === undefined ? await pickEntry() : undefined);
      if (!entry) {
        if (arg !== undefined) void vscode.window.showInformationMessage('That blocked request is no longer listed.');
        return false;
      }
      return pickAndAllow(project, entry, log);
    }),
    vscode.commands.registerCommand('clawker.blocked.dismiss', (arg?: unknown) => {
      const entry = entryArgument(model, arg);
      if (entry) model.forget(entry.key);
    }),
    vscode.commands.registerCommand('clawker.blocked.clear', () => model.clear()),
  );
}
