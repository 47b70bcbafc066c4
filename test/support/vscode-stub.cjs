'use strict';
const fs = require('node:fs');
const nodePath = require('node:path');

function permissive(name) {
  const values = new Map();
  return new Proxy(function () {}, {
    get(target, prop) {
      if (prop === 'then') return undefined; // not a promise: awaiting it yields it
      if (prop === Symbol.iterator) return function* () {};
      if (prop === Symbol.toPrimitive) return () => '';
      if (prop === 'dispose') return () => undefined;
      if (typeof prop === 'symbol') return undefined;
      if (!values.has(prop)) values.set(prop, permissive(name + '.' + prop));
      return values.get(prop);
    },
    set(target, prop, value) {
      values.set(prop, value);
      return true;
    },
    apply: () => permissive(name + '()'),
    construct: (target, args, newTarget) => Reflect.construct(function () {}, args, newTarget),
  });
}

/** An object with the given members; anything else is permissive. */
function namespace(name, members) {
  const fallback = permissive(name);
  return new Proxy(members, {
    get: (target, prop) => (prop in target ? target[prop] : prop === 'then' ? undefined : fallback[prop]),
  });
}

class Disposable {
  constructor(onDispose) { this.onDispose = onDispose; }
  static from(...items) { return new Disposable(() => items.forEach((d) => d && d.dispose && d.dispose())); }
  dispose() { if (this.onDispose) this.onDispose(); this.onDispose = undefined; }
}
const disposable = () => new Disposable();

class EventEmitter {
  constructor() {
    this.listeners = new Set();
    this.event = (listener, thisArg, disposables) => {
      const bound = listener.bind(thisArg);
      this.listeners.add(bound);
      const d = new Disposable(() => this.listeners.delete(bound));
      if (Array.isArray(disposables)) disposables.push(d);
      return d;
    };
  }
  fire(value) { for (const l of [...this.listeners]) l(value); }
  dispose() { this.listeners.clear(); }
}
const event = () => () => disposable();

class Uri {
  constructor(scheme, path, query = '', fragment = '') { Object.assign(this, { scheme, authority: '', path, query, fragment }); }
  static file(path) { return new Uri('file', nodePath.resolve(path)); }
  static parse(text) { const m = /^([a-z][a-z0-9+.-]*):(?:\/\/[^/]*)?([^?#]*)/i.exec(text); return m ? new Uri(m[1], m[2]) : new Uri('file', text); }
  static joinPath(base, ...parts) { return new Uri(base.scheme, nodePath.posix.join(base.path, ...parts)); }
  static from(c) { return new Uri(c.scheme, c.path || '', c.query, c.fragment); }
  get fsPath() { return this.path; }
  with(change) { return new Uri(change.scheme || this.scheme, change.path || this.path, change.query || this.query, change.fragment || this.fragment); }
  toString() { return this.scheme + '://' + this.path; }
  toJSON() { return { scheme: this.scheme, path: this.path }; }
}
class Position { constructor(line, character) { this.line = line; this.character = character; } }
class Range {
  constructor(a, b, c, d) {
    if (typeof a === 'number') { this.start = new Position(a, b); this.end = new Position(c, d); }
    else { this.start = a; this.end = b; }
  }
}
class Selection extends Range {}
class Location { constructor(uri, range) { this.uri = uri; this.range = range; } }
class TreeItem { constructor(label, collapsibleState = 0) { if (typeof label === 'string' || (label && 'label' in label)) this.label = label; else this.resourceUri = label; this.collapsibleState = collapsibleState; } }
class ThemeIcon { constructor(id, color) { this.id = id; this.color = color; } }
ThemeIcon.File = new ThemeIcon('file');
ThemeIcon.Folder = new ThemeIcon('folder');
class ThemeColor { constructor(id) { this.id = id; } }
class MarkdownString {
  constructor(value = '', supportThemeIcons = false) { this.value = value; this.supportThemeIcons = supportThemeIcons; }
  appendText(t) { this.value += t; return this; }
  appendMarkdown(t) { this.value += t; return this; }
  appendCodeblock(t) { this.value += '\n' + t + '\n'; return this; }
}
class Diagnostic { constructor(range, message, severity = 0) { Object.assign(this, { range, message, severity }); } }
class CodeActionKind { constructor(value) { this.value = value; } append(part) { return new CodeActionKind(this.value ? this.value + '.' + part : part); } contains(o) { return o.value === this.value || o.value.startsWith(this.value + '.'); } }
for (const [k, v] of Object.entries({ Empty: '', QuickFix: 'quickfix', Refactor: 'refactor', Source: 'source', SourceFixAll: 'source.fixAll' })) CodeActionKind[k] = new CodeActionKind(v);
class CodeAction { constructor(title, kind) { this.title = title; this.kind = kind; } }
class WorkspaceEdit {
  constructor() { this.edits = []; }
  replace(uri, range, text) { this.edits.push({ uri, range, text }); }
  insert(uri, position, text) { this.edits.push({ uri, range: new Range(position, position), text }); }
  delete(uri, range) { this.edits.push({ uri, range, text: '' }); }
  set(uri, edits) { this.edits.push({ uri, edits }); }
  get size() { return this.edits.length; }
}
class TextEdit { constructor(range, newText) { this.range = range; this.newText = newText; } static replace(r, t) { return new TextEdit(r, t); } static insert(p, t) { return new TextEdit(new Range(p, p), t); } }
class RelativePattern { constructor(base, pattern) { this.base = base; this.pattern = pattern; } }
class CancellationTokenSource {
  constructor() { this.token = { isCancellationRequested: false, onCancellationRequested: event() }; }
  cancel() { this.token.isCancellationRequested = true; }
  dispose() {}
}

const WORKSPACE = process.env.BENCH_WORKSPACE;
const folder = { uri: Uri.file(WORKSPACE), name: nodePath.basename(WORKSPACE), index: 0 };
/** BENCH_OPEN=1: the workspace's .clawker.yaml is open at activation (the onLanguage activation). */
const projectFile = nodePath.join(WORKSPACE, '.clawker.yaml');
const openDocuments = process.env.BENCH_OPEN === '1'
  ? [namespace('textDocument', { uri: Uri.file(projectFile), fileName: projectFile, languageId: 'clawker-yaml', version: 1, isClosed: false, isDirty: false, getText: () => fs.readFileSync(projectFile, 'utf8') })]
  : [];
const configuration = () => namespace('configuration', { get: (key, fallback) => fallback, has: () => false, inspect: () => undefined, update: async () => undefined });
const commandHandlers = new Map();

const vscode = {
  version: '1.100.3',
  Disposable, EventEmitter, Uri, Position, Range, Selection, Location, TreeItem, ThemeIcon, ThemeColor, MarkdownString,
  Diagnostic, CodeActionKind, CodeAction, WorkspaceEdit, TextEdit, RelativePattern, CancellationTokenSource,
  TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
  StatusBarAlignment: { Left: 1, Right: 2 },
  DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2, Hint: 3 },
  ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
  ViewColumn: { Active: -1, Beside: -2, One: 1, Two: 2, Three: 3 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  ExtensionMode: { Production: 1, Development: 2, Test: 3 },
  LogLevel: { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 },
  EndOfLine: { LF: 1, CRLF: 2 },
  FileType: { Unknown: 0, File: 1, Directory: 2, SymbolicLink: 64 },
  QuickPickItemKind: { Separator: -1, Default: 0 },
  window: namespace('window', {
    createOutputChannel: (name) => namespace('outputChannel', { name, logLevel: 3, onDidChangeLogLevel: event() }),
    createTreeView: (id) => namespace('treeView', { id, visible: true, selection: [], onDidChangeVisibility: event(), onDidChangeSelection: event(), onDidExpandElement: event(), onDidCollapseElement: event() }),
    registerTreeDataProvider: () => disposable(),
    createStatusBarItem: () => namespace('statusBarItem', { text: '', show() {}, hide() {}, dispose() {} }),
    showInformationMessage: async () => undefined,
    showWarningMessage: async () => undefined,
    showErrorMessage: async () => undefined,
    withProgress: (options, task) => task({ report() {} }, new CancellationTokenSource().token),
    activeTextEditor: undefined,
    visibleTextEditors: [],
    state: { focused: true, active: true },
  }),
  workspace: namespace('workspace', {
    workspaceFolders: [folder],
    name: folder.name,
    textDocuments: openDocuments,
    isTrusted: true,
    getConfiguration: configuration,
    getWorkspaceFolder: () => folder,
    asRelativePath: (p) => nodePath.relative(WORKSPACE, typeof p === 'string' ? p : p.fsPath),
    findFiles: async () => ['.clawker.yaml', '.clawker/clawker.yaml'].map((f) => nodePath.join(WORKSPACE, f)).filter((f) => fs.existsSync(f)).map((f) => Uri.file(f)),
    createFileSystemWatcher: () => namespace('watcher', { onDidCreate: event(), onDidChange: event(), onDidDelete: event() }),
    fs: namespace('workspace.fs', {
      readFile: async (uri) => new Uint8Array(await fs.promises.readFile(uri.fsPath)),
      stat: async (uri) => { const s = await fs.promises.stat(uri.fsPath); return { type: s.isDirectory() ? 2 : 1, size: s.size, ctime: s.ctimeMs, mtime: s.mtimeMs }; },
    }),
  }),
  commands: namespace('commands', {
    registerCommand: (id, handler) => { commandHandlers.set(id, handler); return new Disposable(() => commandHandlers.delete(id)); },
    executeCommand: async () => undefined,
    getCommands: async () => [...commandHandlers.keys()],
  }),
  languages: namespace('languages', {
    createDiagnosticCollection: (name) => namespace('diagnostics', { name, set() {}, delete() {}, clear() {}, get: () => undefined, has: () => false, forEach() {} }),
  }),
  env: namespace('env', { appName: 'Visual Studio Code', language: 'en', machineId: 'bench', uriScheme: 'vscode', openExternal: async () => true }),
  extensions: namespace('extensions', { all: [], getExtension: () => undefined }),
};

module.exports = namespace('vscode', vscode);
module.exports.__context = (root) => {
  const memento = () => namespace('memento', { get: (key, fallback) => fallback, update: async () => undefined, keys: () => [], setKeysForSync() {} });
  const storage = (name) => nodePath.join(process.env.BENCH_STATE, name);
  return namespace('context', {
    subscriptions: [],
    extensionPath: root,
    extensionUri: Uri.file(root),
    asAbsolutePath: (relative) => nodePath.join(root, relative),
    globalState: memento(),
    workspaceState: memento(),
    secrets: namespace('secrets', { get: async () => undefined, store: async () => undefined, delete: async () => undefined, onDidChange: event() }),
    storageUri: Uri.file(storage('workspace')),
    globalStorageUri: Uri.file(storage('global')),
    logUri: Uri.file(storage('log')),
    storagePath: storage('workspace'),
    globalStoragePath: storage('global'),
    logPath: storage('log'),
    extensionMode: 1,
    // Records what the extension asks of terminals' environments (the launcher's PATH entry).
    environmentVariableCollection: {
      description: undefined,
      persistent: true,
      mutations: [],
      prepend(variable, value) { this.mutations.push(['prepend', variable, value]); },
      append(variable, value) { this.mutations.push(['append', variable, value]); },
      replace(variable, value) { this.mutations.push(['replace', variable, value]); },
      get() { return undefined; },
      forEach() {},
      delete() {},
      clear() { this.mutations = []; },
    },
  });
};
