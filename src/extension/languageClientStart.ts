/**
 * The language client proper: vscode-languageclient and how the server (dist/server.js) is started.
 * Bundled on its own (dist/languageClientStart.js) and loaded by languageClient.ts through lazy.ts
 * when the first Clawker file opens, so activation does not parse vscode-languageclient.
 */
import type * as vscode from 'vscode';
import { LanguageClient, type LanguageClientOptions, type ServerOptions, TransportKind } from 'vscode-languageclient/node';

/** Creates and starts the client for documents of `languageId`; dispose it to stop the server. */
export function startLanguageClient(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, languageId: string): vscode.Disposable {
  const module = context.asAbsolutePath('dist/server.js');
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc },
    debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6009'] } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ language: languageId }],
    outputChannel: log,
    traceOutputChannel: log,
  };
  const client = new LanguageClient('clawker', 'Clawker Language Server', serverOptions, clientOptions);
  client.start().catch((e: unknown) => log.error(`The Clawker language server did not start: ${String(e)}`));
  return client;
}
