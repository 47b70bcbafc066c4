/**
 * bench/editor: what the extension costs the editor.
 *
 *   1. Activation: `require(dist/extension.js)` + `activate(context)` (awaited), in a fresh `node`
 *      per sample, with a stand-in for the `vscode` module (loaded before the clock starts, as VS
 *      Code's API exists before any extension loads). Baseline in the same run, samples interleaved:
 *      the same harness activating a trivial extension that registers one command. Target: median
 *      under 100 ms. The workspace holds a .clawker.yaml and no Clawker file is open (the
 *      `workspaceContains` activation); with one open, the language client's load adds to it.
 *   2. First use, after activation (reported, no target): loading dist/editorCore.js (the pure core,
 *      on the first feature that needs it) and dist/languageClientStart.js (vscode-languageclient,
 *      when the first Clawker file opens).
 *   3. Sizes of the bundles and of dist/clawker.vsix (packaged with `npm run package` unless it is
 *      newer than every input). Sizes are exact: no baseline is needed to tell noise from change.
 *
 * Everything is built for the run with `scripts/build.mjs --production --outdir <temp>`. Exits
 * non-zero only when something could not be measured, never for a missed target.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentileSorted } from './lib/stats';
import { machine } from './lib/timing';

const ROOT = join(__dirname, '..');
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 15);
const TARGET_ACTIVATION_MS = 100;

// ---- the vscode stand-in and the harness (plain CommonJS, written to a temp dir) -------------

/**
 * What activation touches, with working event emitters and settable objects; any other property is
 * a no-op function returning a disposable (and is itself such a value, so chains work).
 */
const VSCODE_STUB = String.raw`'use strict';
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
  });
};
`;

/**
 * One sample: argv = mode, extension file, extension root, stub file. Prints JSON: activation ms,
 * the lazy load's ms (modes editorCore / languageClient), the files loaded and processes spawned
 * during activation. Processes the extension starts are killed before exiting, so none outlives
 * its sample and skews the next.
 */
const HARNESS = String.raw`'use strict';
const Module = require('node:module');
const childProcess = require('node:child_process');
const nodePath = require('node:path');
const { performance } = require('node:perf_hooks');
const [mode, extensionFile, extensionRoot, stubFile] = process.argv.slice(2);

const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === 'vscode' ? stubFile : resolveFilename.call(this, request, ...rest);
};
const started = []; // commands
const children = []; // their ChildProcess objects
for (const name of ['spawn', 'execFile', 'fork', 'exec']) {
  const original = childProcess[name];
  childProcess[name] = function (...args) {
    const child = original.apply(this, args);
    const argv = Array.isArray(args[1]) ? args[1].slice(0, 3).map((a) => nodePath.basename(String(a))) : [];
    started.push([nodePath.basename(String(args[0])), ...argv].join(' '));
    children.push(child);
    return child;
  };
}
const vscode = require(stubFile);
const context = vscode.__context(extensionRoot);
const before = new Set(Object.keys(require.cache));

(async () => {
  const t0 = performance.now();
  const extension = require(extensionFile);
  await extension.activate(context);
  const activationMs = performance.now() - t0;
  const loaded = Object.keys(require.cache).filter((f) => !before.has(f));
  const spawned = [...started];
  let lazyMs;
  if (mode !== 'activate') {
    const file = nodePath.join(nodePath.dirname(extensionFile), mode === 'editorCore' ? 'editorCore.js' : 'languageClientStart.js');
    const t1 = performance.now();
    require(file);
    lazyMs = performance.now() - t1;
  }
  for (const child of children) if (child && child.kill) child.kill('SIGKILL');
  process.stdout.write(JSON.stringify({ activationMs, lazyMs, loaded, spawned }));
  process.exit(0);
})().catch((e) => {
  process.stderr.write(String((e && e.stack) || e));
  process.exit(1);
});
`;

const TRIVIAL_EXTENSION = `'use strict';
const vscode = require('vscode');
exports.activate = (context) => {
  context.subscriptions.push(vscode.commands.registerCommand('bench.hello', () => vscode.window.showInformationMessage('Hello')));
};
`;

interface Sample {
  activationMs: number;
  lazyMs?: number;
  loaded: string[];
  spawned: string[];
}

// ---- measuring ---------------------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), 'clawker-bench-editor-'));
const extensionRoot = join(work, 'extension');
const dist = join(extensionRoot, 'dist');
const trivialRoot = join(work, 'trivial');
const stubFile = join(work, 'vscode.js');
const harnessFile = join(work, 'harness.js');
const workspace = join(work, 'workspace');
const failures: string[] = [];

function setUp(): void {
  mkdirSync(trivialRoot, { recursive: true });
  mkdirSync(workspace, { recursive: true });
  mkdirSync(join(work, 'state'), { recursive: true });
  mkdirSync(join(work, 'data'), { recursive: true });
  writeFileSync(stubFile, VSCODE_STUB);
  writeFileSync(harnessFile, HARNESS);
  writeFileSync(join(trivialRoot, 'extension.js'), TRIVIAL_EXTENSION);
  writeFileSync(join(workspace, '.clawker.yaml'), 'security:\n  firewall:\n    add_domains:\n      - github.com\n    rules:\n      - dst: github.com\n        proto: ssh\n        port: "22"\n');
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), '--production', '--outdir', dist], { cwd: ROOT, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`scripts/build.mjs --production failed:\n${built.stderr}${built.stdout}`);
}

function sample(mode: 'activate' | 'editorCore' | 'languageClient', extensionFile: string, root: string, fileOpen = false): Sample {
  const r = spawnSync(process.execPath, [harnessFile, mode, extensionFile, root, stubFile], {
    cwd: workspace,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, BENCH_WORKSPACE: workspace, BENCH_STATE: join(work, 'state'), BENCH_OPEN: fileOpen ? '1' : '0', CLAWKER_DATA_DIR: join(work, 'data') },
  });
  if (r.status !== 0) throw new Error(`${mode} of ${extensionFile} failed (exit ${r.status ?? r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as Sample;
}

const sorted = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b);
const med = (xs: readonly number[]): number => percentileSorted(sorted(xs), 50);
const p90 = (xs: readonly number[]): number => percentileSorted(sorted(xs), 90);
const ms = (x: number): string => `${x.toFixed(1)} ms`.padStart(9);
const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KB`.padStart(10);

function measureActivation(): void {
  const extension = join(dist, 'extension.js');
  const trivial = join(trivialRoot, 'extension.js');
  const base: number[] = [];
  const closed: Sample[] = [];
  const open: number[] = [];
  const core: number[] = [];
  const client: number[] = [];
  // Warm the file cache, unmeasured.
  sample('activate', trivial, trivialRoot);
  sample('activate', extension, extensionRoot, true);
  for (let i = 0; i < SAMPLES; i++) {
    // Interleaved; the baseline alternates between first and last of the round.
    const round = [
      () => closed.push(sample('activate', extension, extensionRoot)),
      () => open.push(sample('activate', extension, extensionRoot, true).activationMs),
      () => core.push(sample('editorCore', extension, extensionRoot).lazyMs!),
      () => client.push(sample('languageClient', extension, extensionRoot).lazyMs!),
    ];
    const baseline = () => base.push(sample('activate', trivial, trivialRoot).activationMs);
    (i % 2 ? [baseline, ...round] : [...round, baseline]).forEach((measure) => measure());
  }
  const activation = closed.map((s) => s.activationMs);
  const b = med(base);
  const row = (label: string, xs: number[], ratio = true) =>
    `   ${label.padEnd(62)}${ms(med(xs))}${ms(p90(xs))}${ratio ? `${(med(xs) / b).toFixed(1)}×`.padStart(9) : ''}`;
  const target = (xs: number[]) => (med(xs) < TARGET_ACTIVATION_MS ? 'PASS' : 'FAIL');
  console.log(`   ${'activation: require + activate()'.padEnd(62)}${'median'.padStart(9)}${'p90'.padStart(9)}${'ratio'.padStart(9)}`);
  console.log(row('trivial extension, one command (baseline)', base, false));
  console.log(row('clawker, no Clawker file open (workspaceContains)', activation));
  console.log(row('clawker, .clawker.yaml open (onLanguage: starts the client)', open));
  console.log(`   target: median < ${TARGET_ACTIVATION_MS} ms: ${target(activation)} (no file open), ${target(open)} (file open)`);
  const first = closed[0]!;
  const ownFiles = first.loaded.filter((f) => f.startsWith(dist)).map((f) => f.slice(dist.length + 1));
  const lazyAtActivation = ownFiles.filter((f) => f === 'editorCore.js' || f === 'languageClientStart.js');
  const files = `${first.loaded.length} file${first.loaded.length === 1 ? '' : 's'}`;
  console.log(`   loaded by activation (no file open): ${files} (${ownFiles.join(', ')}); processes started: ${first.spawned.length ? first.spawned.join(', ') : 'none'}`);
  if (lazyAtActivation.length) console.log(`   NOTE: ${lazyAtActivation.join(' and ')} loaded during activation: not lazy`);
  console.log('   first use, after activation (no target):');
  console.log(row('editorCore(): require dist/editorCore.js', core, false));
  console.log(row('language client: require dist/languageClientStart.js', client, false));
}

// ---- sizes -------------------------------------------------------------------------------------

interface ZipEntry {
  name: string;
  size: number;
  compressed: number;
}

/** The entries of a zip archive, from its central directory (a .vsix is one). */
function zipEntries(zip: Buffer): ZipEntry[] {
  let end = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new Error('not a zip archive (no end of central directory)');
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries: ZipEntry[] = [];
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central directory entry at ${at}`);
    const nameLength = zip.readUInt16LE(at + 28);
    entries.push({ compressed: zip.readUInt32LE(at + 20), size: zip.readUInt32LE(at + 24), name: zip.toString('utf8', at + 46, at + 46 + nameLength) });
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return entries;
}

/** Newest modification time (ms) of the files the .vsix is made from. */
function newestInput(): number {
  let newest = 0;
  const visit = (path: string): void => {
    if (!existsSync(path)) return;
    const s = statSync(path);
    if (s.isDirectory()) readdirSync(path).forEach((name) => visit(join(path, name)));
    else newest = Math.max(newest, s.mtimeMs);
  };
  for (const input of ['package.json', '.vscodeignore', 'README.md', 'LICENSE', 'scripts/build.mjs', 'src', 'media', 'schemas', 'images/agent']) visit(join(ROOT, input));
  return newest;
}

function packagedVsix(): string {
  const vsix = join(ROOT, 'dist', 'clawker.vsix');
  if (existsSync(vsix) && statSync(vsix).mtimeMs > newestInput()) return vsix;
  console.error('bench/editor: packaging dist/clawker.vsix (npm run package)');
  const r = spawnSync('npm', ['run', '--silent', 'package'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`npm run package exited ${r.status ?? r.signal}`);
  return vsix;
}

function measureSizes(): void {
  console.log('   sizes (exact, so no baseline):');
  for (const name of ['extension.js', 'editorCore.js', 'languageClientStart.js']) console.log(`   ${`dist/${name} (production build)`.padEnd(62)}${kb(statSync(join(dist, name)).size)}`);
  const vsix = packagedVsix();
  const entries = zipEntries(readFileSync(vsix));
  const largest = [...entries].sort((a, b) => b.size - a.size).slice(0, 3);
  const size = statSync(vsix).size;
  const top = largest.reduce((sum, e) => sum + e.size, 0);
  console.log(`   ${`dist/clawker.vsix, ${entries.length} entries`.padEnd(62)}${kb(size)}`);
  for (const e of largest) console.log(`     ${e.name.replace(/^extension\//, '').padEnd(60)}${kb(e.size)} (${kb(e.compressed).trim()} compressed)`);
  console.log(`   vsix / its three largest files uncompressed: ${(size / top).toFixed(2)}×`);
}

// ---- the run -----------------------------------------------------------------------------------

try {
  setUp();
  console.log(`bench/editor — ${machine()}; ${SAMPLES} samples each, interleaved, a fresh node per sample; vscode is a stand-in (VS Code's own host work is not included)`);
  try {
    measureActivation();
  } catch (e) {
    failures.push(`activation: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    measureSizes();
  } catch (e) {
    failures.push(`sizes: ${e instanceof Error ? e.message : String(e)}`);
  }
} catch (e) {
  failures.push(e instanceof Error ? e.message : String(e));
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (failures.length) {
  console.error(`bench/editor could not measure:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
  process.exit(1);
}
