/**
 * Drives the real language server in-process over a pair of streams, speaking LSP through
 * vscode-languageserver-protocol: no editor, same messages VS Code sends.
 */
import { PassThrough } from 'node:stream';
import {
  type CodeAction,
  CodeActionRequest,
  type CompletionItem,
  CompletionRequest,
  type CompletionList,
  createProtocolConnection,
  type Diagnostic,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  type Hover,
  HoverRequest,
  InitializedNotification,
  InitializeRequest,
  type ProtocolConnection,
  PublishDiagnosticsNotification,
  type PublishDiagnosticsParams,
  type Range,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-languageserver-protocol/node';
import { createConnection } from 'vscode-languageserver/node';
import { startLanguageServer } from '../../src/server/languageServer';

export class LspTestClient {
  private readonly client: ProtocolConnection;
  private readonly waiters = new Map<string, { version: number; resolve: (d: Diagnostic[]) => void }[]>();
  private readonly latest = new Map<string, PublishDiagnosticsParams>();
  private readonly versions = new Map<string, number>();

  constructor() {
    const toServer = new PassThrough();
    const toClient = new PassThrough();
    startLanguageServer(createConnection(new StreamMessageReader(toServer), new StreamMessageWriter(toClient)));
    this.client = createProtocolConnection(new StreamMessageReader(toClient), new StreamMessageWriter(toServer));
    this.client.onNotification(PublishDiagnosticsNotification.type, (p) => {
      this.latest.set(p.uri, p);
      const pending = this.waiters.get(p.uri) ?? [];
      this.waiters.set(p.uri, pending.filter((w) => (p.version ?? 0) < w.version || (w.resolve(p.diagnostics), false)));
    });
    this.client.listen();
  }

  async initialize(): Promise<void> {
    await this.client.sendRequest(InitializeRequest.type, { processId: null, rootUri: null, capabilities: {}, workspaceFolders: null });
    await this.client.sendNotification(InitializedNotification.type, {});
  }

  /** Opens a document and resolves with the diagnostics published for that version. */
  open(uri: string, text: string): Promise<Diagnostic[]> {
    this.versions.set(uri, 1);
    const published = this.diagnosticsFor(uri, 1);
    void this.client.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'clawker-yaml', version: 1, text } });
    return published;
  }

  change(uri: string, text: string): Promise<Diagnostic[]> {
    const version = (this.versions.get(uri) ?? 1) + 1;
    this.versions.set(uri, version);
    const published = this.diagnosticsFor(uri, version);
    void this.client.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version }, contentChanges: [{ text }] });
    return published;
  }

  private diagnosticsFor(uri: string, version: number): Promise<Diagnostic[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no diagnostics for ${uri} v${version}`)), 5000);
      const list = this.waiters.get(uri) ?? [];
      list.push({ version, resolve: (d) => (clearTimeout(timer), resolve(d)) });
      this.waiters.set(uri, list);
    });
  }

  hover(uri: string, line: number, character: number): Promise<Hover | null> {
    return this.client.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line, character } });
  }

  async completion(uri: string, line: number, character: number): Promise<CompletionItem[]> {
    const r = (await this.client.sendRequest(CompletionRequest.type, { textDocument: { uri }, position: { line, character } })) as CompletionItem[] | CompletionList | null;
    return Array.isArray(r) ? r : (r?.items ?? []);
  }

  async codeActions(uri: string, range: Range, diagnostics: Diagnostic[]): Promise<CodeAction[]> {
    const r = await this.client.sendRequest(CodeActionRequest.type, { textDocument: { uri }, range, context: { diagnostics } });
    return (r ?? []) as CodeAction[];
  }

  async dispose(): Promise<void> {
    // No 'exit' notification: the node server answers it with process.exit, which would end the test run.
    await this.client.sendRequest(ShutdownRequest.type);
    this.client.dispose();
  }
}

/** Applies LSP text edits (non-overlapping) to a text. */
export function applyEdits(text: string, edits: { range: Range; newText: string }[]): string {
  const lines = text.split('\n');
  const offset = (p: { line: number; character: number }) => lines.slice(0, p.line).reduce((n, l) => n + l.length + 1, 0) + p.character;
  return [...edits]
    .sort((a, b) => offset(b.range.start) - offset(a.range.start))
    .reduce((t, e) => t.slice(0, offset(e.range.start)) + e.newText + t.slice(offset(e.range.end)), text);
}
