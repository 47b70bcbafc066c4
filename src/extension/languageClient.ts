import * as vscode from 'vscode';
import { languageClientStart } from './lazy';

export const CLAWKER_LANGUAGE_ID = 'clawker-yaml';

/**
 * Starts the language server the first time a Clawker file is open, not at activation, so opening a
 * workspace stays cheap: vscode-languageclient itself is loaded only then (languageClientStart.ts).
 * Files get the `clawker-yaml` language (not `yaml`), which keeps other YAML extensions from
 * reporting every problem a second time.
 */
export function registerLanguageClient(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
  let started = false;
  const start = (): void => {
    if (started) return;
    started = true;
    watcher.dispose();
    try {
      context.subscriptions.push(languageClientStart().startLanguageClient(context, log, CLAWKER_LANGUAGE_ID));
    } catch (e) {
      log.error(`The Clawker language client could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const startFor = (doc: vscode.TextDocument): void => {
    if (doc.languageId === CLAWKER_LANGUAGE_ID) start();
  };
  const watcher = vscode.workspace.onDidOpenTextDocument(startFor);
  context.subscriptions.push(watcher);
  vscode.workspace.textDocuments.forEach(startFor);
}
