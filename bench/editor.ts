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
import { baselineOf, Results } from './lib/results';
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
/** A permissive stand-in for the `vscode` module (shared with the manifest test). */
const VSCODE_STUB = readFileSync(join(__dirname, '..', 'test', 'support', 'vscode-stub.cjs'), 'utf8');

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
const results = new Results('editor', 'what the extension costs the editor: activation, first use, sizes');

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
  const baseline = baselineOf(ms(b).trim(), 'trivial extension, one command');
  const row = (label: string, xs: number[], ratio = true) => {
    const r = `${(med(xs) / b).toFixed(1)}×`;
    results.row(`${label} (median)`, ms(med(xs)).trim(), ratio ? { baseline, ratio: r, note: `p90 ${ms(p90(xs)).trim()}` } : { note: `p90 ${ms(p90(xs)).trim()}` });
    return `   ${label.padEnd(62)}${ms(med(xs))}${ms(p90(xs))}${ratio ? r.padStart(9) : ''}`;
  };
  const target = (xs: number[]) => (med(xs) < TARGET_ACTIVATION_MS ? 'PASS' : 'FAIL');
  results.startSection('activation: require + activate()');
  console.log(`   ${'activation: require + activate()'.padEnd(62)}${'median'.padStart(9)}${'p90'.padStart(9)}${'ratio'.padStart(9)}`);
  console.log(`   ${'trivial extension, one command (baseline)'.padEnd(62)}${ms(b)}${ms(p90(base))}`);
  console.log(row('clawker, no Clawker file open (workspaceContains)', activation));
  console.log(row('clawker, .clawker.yaml open (onLanguage: starts the client)', open));
  const targetLine = `target: median < ${TARGET_ACTIVATION_MS} ms: ${target(activation)} (no file open), ${target(open)} (file open)`;
  console.log(`   ${targetLine}`);
  results.note(targetLine);
  const first = closed[0]!;
  const ownFiles = first.loaded.filter((f) => f.startsWith(dist)).map((f) => f.slice(dist.length + 1));
  const lazyAtActivation = ownFiles.filter((f) => f === 'editorCore.js' || f === 'languageClientStart.js');
  const files = `${first.loaded.length} file${first.loaded.length === 1 ? '' : 's'}`;
  const loadedLine = `loaded by activation (no file open): ${files} (${ownFiles.join(', ')}); processes started: ${first.spawned.length ? first.spawned.join(', ') : 'none'}`;
  console.log(`   ${loadedLine}`);
  results.note(loadedLine);
  if (lazyAtActivation.length) {
    console.log(`   NOTE: ${lazyAtActivation.join(' and ')} loaded during activation: not lazy`);
    results.note(`NOTE: ${lazyAtActivation.join(' and ')} loaded during activation: not lazy`);
  }
  results.startSection('first use, after activation (no target)');
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
  results.startSection('sizes (exact, so no baseline)');
  console.log('   sizes (exact, so no baseline):');
  for (const name of ['extension.js', 'editorCore.js', 'languageClientStart.js']) {
    const size = kb(statSync(join(dist, name)).size);
    console.log(`   ${`dist/${name} (production build)`.padEnd(62)}${size}`);
    results.row(`dist/${name} (production build)`, size.trim());
  }
  const vsix = packagedVsix();
  const entries = zipEntries(readFileSync(vsix));
  const largest = [...entries].sort((a, b) => b.size - a.size).slice(0, 3);
  const size = statSync(vsix).size;
  const top = largest.reduce((sum, e) => sum + e.size, 0);
  const ratio = `${(size / top).toFixed(2)}×`;
  console.log(`   ${`dist/clawker.vsix, ${entries.length} entries`.padEnd(62)}${kb(size)}`);
  for (const e of largest) console.log(`     ${e.name.replace(/^extension\//, '').padEnd(60)}${kb(e.size)} (${kb(e.compressed).trim()} compressed)`);
  console.log(`   vsix / its three largest files uncompressed (${kb(top).trim()}): ${ratio}`);
  results.row(`dist/clawker.vsix, ${entries.length} entries`, kb(size).trim(), {
    baseline: baselineOf(kb(top).trim(), `its three largest files uncompressed: ${largest.map((e) => e.name.replace(/^extension\//, '')).join(', ')}`),
    ratio,
  });
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
if (!failures.length) results.save();
if (failures.length) {
  console.error(`bench/editor could not measure:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
  process.exit(1);
}
