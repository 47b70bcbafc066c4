import * as vscode from 'vscode';
import { LanguageClient, type LanguageClientOptions, type ServerOptions, TransportKind } from 'vscode-languageclient/node';

export const CLAWKER_LANGUAGE_ID = 'clawker-yaml';

/**
 * Starts the language server the first time a Clawker file is open, not at activation, so opening a
 * workspace stays cheap. Files get the `clawker-yaml` language (not `yaml`), which keeps other YAML
 * extensions from reporting every problem a second time.
 */
export function registerLanguageClient(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
  let client: LanguageClient | undefined;
  const start = (): void => {
    if (client) return;
    const module = context.asAbsolutePath('dist/server.js');
    const serverOptions: ServerOptions = {
      run: { module, transport: TransportKind.ipc },
      debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6009'] } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ language: CLAWKER_LANGUAGE_ID }],
      outputChannel: log,
      traceOutputChannel: log,
    };
    client = new LanguageClient('clawker', 'Clawker Language Server', serverOptions, clientOptions);
    context.subscriptions.push(client);
    client.start().catch((e: unknown) => log.error(`The Clawker language server did not start: ${String(e)}`));
  };
  const startFor = (doc: vscode.TextDocument): void => {
    if (doc.languageId === CLAWKER_LANGUAGE_ID) start();
  };
  vscode.workspace.textDocuments.forEach(startFor);
  context.subscriptions.push(vscode.workspace.onDidOpenTextDocument(startFor));
}
