/**
 * package.json and the code agree: every command the manifest declares is registered by activate(),
 * every command activate() registers is declared (so it has a title and a category in the palette),
 * and every `command:` link or menu entry (views, welcome views, walkthrough) names one of them or a
 * built-in. activate() runs against the permissive vscode stand-in shared with bench/editor.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

const ROOT = join(__dirname, '..', '..');
const STUB = join(ROOT, 'test', 'support', 'vscode-stub.cjs');
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  activationEvents: string[];
  contributes: {
    commands: { command: string; title: string; category?: string }[];
    menus: Record<string, { command: string }[]>;
    views: Record<string, { id: string }[]>;
    viewsWelcome: { view: string; contents: string }[];
    walkthroughs: { steps: { description: string; completionEvents?: string[] }[] }[];
  };
};

/** Commands VS Code itself provides that our links may use. */
const BUILT_IN = /^(workbench\.|vscode\.|revealFileInOS$)/;

let registered: string[] = [];
let subscriptions: { dispose(): unknown }[] = [];
let terminalEnv: { mutations: [string, string, string][]; description?: string } | undefined;
let extensionRoot = '';

before(async () => {
  const workspace = mkdtempSync(join(tmpdir(), 'clawker-manifest-ws-'));
  writeFileSync(join(workspace, '.clawker.yaml'), 'security:\n  firewall:\n    add_domains: [github.com]\n');
  process.env.BENCH_WORKSPACE = workspace;
  process.env.BENCH_STATE = mkdtempSync(join(tmpdir(), 'clawker-manifest-state-'));
  const resolve = (Module as unknown as { _resolveFilename: (r: string, ...rest: unknown[]) => string })._resolveFilename;
  (Module as unknown as { _resolveFilename: (r: string, ...rest: unknown[]) => string })._resolveFilename = function (request: string, ...rest: unknown[]) {
    return request === 'vscode' ? STUB : resolve.call(this, request, ...rest);
  };
  const vscode = require(STUB) as { __context(root: string): { subscriptions: { dispose(): unknown }[] }; commands: { getCommands(): Promise<string[]> } };
  // An extension root without dist/: the CLI the activation lists agents with fails, as on a broken install.
  extensionRoot = mkdtempSync(join(tmpdir(), 'clawker-manifest-ext-'));
  const context = vscode.__context(extensionRoot) as { subscriptions: { dispose(): unknown }[]; environmentVariableCollection: typeof terminalEnv };
  const extension = require('../../src/extension/extension') as { activate(c: unknown): void };
  extension.activate(context);
  subscriptions = context.subscriptions;
  terminalEnv = context.environmentVariableCollection;
  registered = (await vscode.commands.getCommands()).filter((c) => c.startsWith('clawker.'));
  await new Promise((resolve) => setImmediate(resolve)); // what activation defers (the terminal launcher's file)
});

after(() => {
  for (const s of subscriptions) s.dispose();
});

describe('the manifest and activate() agree', () => {
  const declared = manifest.contributes.commands.map((c) => c.command);

  test('activate() registers every declared command', () => {
    assert.deepEqual(declared.filter((c) => !registered.includes(c)), []);
  });

  test('every command activate() registers is declared, with a title and the Clawker category', () => {
    assert.deepEqual(registered.filter((c) => !declared.includes(c)), []);
    for (const c of manifest.contributes.commands) {
      assert.ok(c.title.length > 0, `${c.command} has a title`);
      assert.equal(c.category, 'Clawker', `${c.command} is in the Clawker category`);
    }
  });

  test('menus, welcome views and the walkthrough only name declared or built-in commands', () => {
    const views = Object.values(manifest.contributes.views).flat().map((v) => `${v.id}.focus`);
    const known = (c: string): boolean => declared.includes(c) || views.includes(c) || BUILT_IN.test(c);
    const inMenus = Object.values(manifest.contributes.menus).flat().map((m) => m.command);
    const inLinks = [...manifest.contributes.viewsWelcome.map((w) => w.contents), ...manifest.contributes.walkthroughs.flatMap((w) => w.steps.map((s) => s.description))]
      .flatMap((text) => [...text.matchAll(/\(command:([A-Za-z0-9_.]+)/g)].map((m) => m[1]!));
    const inEvents = manifest.contributes.walkthroughs.flatMap((w) => w.steps.flatMap((s) => s.completionEvents ?? [])).filter((e) => e.startsWith('onCommand:')).map((e) => e.slice('onCommand:'.length));
    assert.ok(inLinks.length >= 8, `links found: ${inLinks.join(', ')}`);
    assert.deepEqual([...inMenus, ...inLinks, ...inEvents].filter((c) => !known(c)), []);
  });

  test('welcome views are for views that exist', () => {
    const ids = Object.values(manifest.contributes.views).flat().map((v) => v.id);
    assert.deepEqual(manifest.contributes.viewsWelcome.map((w) => w.view).filter((v) => !ids.includes(v)), []);
  });
});

describe('where the extension runs', () => {
  test('extensionKind workspace: it runs beside the project and the Docker engine (WSL, SSH, a dev container), never only in the UI', () => {
    assert.deepEqual((manifest as unknown as { extensionKind?: string[] }).extensionKind, ['workspace']);
  });

  test("activation puts a clawker launcher on terminals' PATH, from the extension's global storage, running its bundled CLI", () => {
    const bin = join(process.env.BENCH_STATE!, 'global', 'bin');
    assert.deepEqual(terminalEnv?.mutations, [['prepend', 'PATH', `${bin}:`]]);
    const launcher = join(bin, 'clawker');
    assert.equal(statSync(launcher).mode & 0o777, 0o755);
    const text = readFileSync(launcher, 'utf8');
    assert.ok(text.includes(`'${process.execPath}' '${join(extensionRoot, 'dist', 'cli.js')}' "$@"`), text);
  });
});
