/**
 * The Clawker language server: diagnostics, hover, completion and quick fixes for `.clawker.yaml`
 * and `settings.yaml`. Transport-agnostic, so tests drive it in-process over a stream pair.
 */
import { type Connection, TextDocuments, TextDocumentSyncKind } from 'vscode-languageserver';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { jsonSchemaFor, configKindOf } from '../core/config/schemas';
import { DocumentCache } from './documentCache';
import { codeActions } from './features/codeActions';
import { completion } from './features/completion';
import { toDiagnostic } from './features/diagnostics';
import { hover } from './features/hover';

export function startLanguageServer(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  const cache = new DocumentCache();
  const schemaOf = (uri: string) => jsonSchemaFor(configKindOf(decodeURIComponent(uri)));

  connection.onInitialize(() => ({
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      hoverProvider: true,
      completionProvider: { triggerCharacters: [':', ' ', '-'] },
      codeActionProvider: { codeActionKinds: ['quickfix'] },
    },
    serverInfo: { name: 'clawker-language-server' },
  }));

  const publish = (document: TextDocument): void => {
    const loaded = cache.get(document);
    void connection.sendDiagnostics({ uri: document.uri, version: document.version, diagnostics: loaded.problems.map((p) => toDiagnostic(document, p)) });
  };

  documents.onDidOpen((e) => publish(e.document));
  documents.onDidChangeContent((e) => publish(e.document));
  documents.onDidClose((e) => {
    cache.forget(e.document.uri);
    void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
  });

  connection.onHover((params) => {
    const document = documents.get(params.textDocument.uri);
    return document ? hover(document, cache.get(document), schemaOf(document.uri), params.position) : null;
  });
  connection.onCompletion((params) => {
    const document = documents.get(params.textDocument.uri);
    return document ? completion(document, schemaOf(document.uri), params.position) : [];
  });
  connection.onCodeAction((params) => {
    const document = documents.get(params.textDocument.uri);
    return document ? codeActions(document, cache.get(document).problems, params.range) : [];
  });

  documents.listen(connection);
  connection.listen();
}
