/**
 * Extension entry point: thin on purpose. Each feature registers itself; none holds policy logic,
 * which lives in `src/core` and is shared with the CLI and the language server.
 */
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { registerLanguageClient } from './languageClient';
import { registerRulesView } from './views/rulesView';

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Clawker', { log: true });
  context.subscriptions.push(log);
  registerLanguageClient(context, log);
  registerCommands(context, log);
  registerRulesView(context);
  context.subscriptions.push(vscode.window.registerTreeDataProvider('clawker.agents', { getTreeItem: (e: vscode.TreeItem) => e, getChildren: () => [] }));
}

export function deactivate(): void {
  // Disposables registered on the context are released by VS Code, the language client included.
}
