/**
 * The .vsix: exactly the files the installed extension needs (the extension and its lazily loaded
 * parts, the language server, the CLI and the host proxy it starts, and what the agent image is built
 * from), and that set works without the checkout. Packaged as `npm run package` packages (a production
 * build, then `vsce ls --no-dependencies` for the file list), from a copy of what a fresh clone holds
 * (`git ls-files`), so the checkout's own dist/ is left alone.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { after, before, test } from 'node:test';
import { INSTALLED_SOURCES } from '../../src/core/agents/agentImageInputs';
import { BUILT_STACK_IMAGES, ENGINE_ARCHES, stackImageSources } from '../../src/core/stack/stackImages';
import { findInstallationRoot, locateAgentImageSources } from '../../src/platform/docker/agentImage';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { TARGETS, engineBinaries, ignoreFileText } = require('../../scripts/package.mjs') as {
  TARGETS: Record<string, string>;
  engineBinaries: (arch: string) => string[];
  ignoreFileText: (arch: string) => string;
};

const ROOT = join(__dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'clawker-packaging-'));
const stage = join(work, 'checkout');
const installed = join(work, 'installed');
let listing: string[] = [];

/** Every file below `dir`, as `/`-separated paths relative to `base`. */
function filesBelow(dir: string, base: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(base, join(entry.parentPath, entry.name)).split(sep).join('/'));
}

function copyInto(target: string, files: readonly string[], from: string): void {
  for (const file of files) {
    mkdirSync(dirname(join(target, file)), { recursive: true });
    copyFileSync(join(from, file), join(target, file));
  }
}

/** The Node-API headers the build copies (node-api-headers' include directory). */
function napiHeaderNames(): string[] {
  const { include_dir: includeDir } = require('node-api-headers') as { include_dir: string };
  return filesBelow(includeDir, includeDir);
}

before(() => {
  const tracked = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((file) => file !== '' && existsSync(join(ROOT, file)) && lstatSync(join(ROOT, file)).isFile());
  copyInto(stage, tracked, ROOT);
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), '--production', '--outdir', join(stage, 'dist')], { cwd: ROOT, stdio: 'pipe' });
  // Stand-ins for the Go binaries of both architectures (scripts/build-images.sh compiles the real
  // ones; the journey in test/e2e/vsixJourney.test.ts runs them): the package takes one architecture.
  for (const arch of ENGINE_ARCHES) for (const file of engineBinaries(arch)) {
    mkdirSync(dirname(join(stage, file)), { recursive: true });
    writeFileSync(join(stage, file), `${arch}\n`);
  }
  const ignoreFile = join(work, 'linux-x64.vscodeignore');
  writeFileSync(ignoreFile, ignoreFileText(TARGETS['linux-x64']!));
  const vsce = join(ROOT, 'node_modules', '.bin', 'vsce');
  listing = execFileSync(vsce, ['ls', '--no-dependencies', '--ignoreFile', ignoreFile], { cwd: stage, encoding: 'utf8' }).split('\n').filter(Boolean).sort();
  copyInto(installed, listing, stage);
});

after(() => rmSync(work, { recursive: true, force: true }));

test('the package holds exactly the extension, its lazy parts, the CLI, the host proxy, the agent image sources and the stack images sources', () => {
  const { napiHeadersDir, ...agentImageFiles } = INSTALLED_SOURCES;
  const expected = [
    'package.json',
    'README.md',
    'LICENSE',
    ...filesBelow(join(stage, 'media'), stage),
    ...filesBelow(join(stage, 'schemas'), stage),
    'dist/extension.js',
    'dist/editorCore.js',
    'dist/languageClientStart.js',
    'dist/server.js',
    'dist/cli.js',
    'dist/hostproxy.js',
    ...Object.values(agentImageFiles),
    ...napiHeaderNames().map((name) => `${napiHeadersDir}/${name}`),
    ...new Set(BUILT_STACK_IMAGES.flatMap((image) => stackImageSources(image, 'amd64').map((s) => s.source))),
  ].sort();
  assert.deepEqual(listing, expected);
});

test("each platform's package carries the Linux binaries of its engine's architecture, macOS ones included", () => {
  assert.deepEqual(TARGETS, { 'linux-x64': 'amd64', 'linux-arm64': 'arm64', 'darwin-x64': 'amd64', 'darwin-arm64': 'arm64' });
  for (const [target, arch] of Object.entries(TARGETS)) {
    const text = ignoreFileText(arch);
    for (const other of ENGINE_ARCHES) {
      const listed = engineBinaries(other).every((file) => text.includes(`\n!${file}\n`));
      assert.equal(listed, other === arch, `${target}: linux-${other} binaries ${listed ? 'in' : 'not in'} the package`);
    }
  }
});

test('from the installed files alone, both stack images have every file they are built from', () => {
  for (const image of BUILT_STACK_IMAGES) {
    for (const s of stackImageSources(image, 'amd64')) assert.ok(existsSync(join(installed, ...s.source.split('/'))), `${image}: ${s.source}`);
  }
});

test('no tests, no source maps, no node_modules, and of the sources only the agent image native helper', () => {
  assert.deepEqual(listing.filter((file) => /(^|\/)(test|node_modules)\//.test(file) || file.endsWith('.map')), []);
  assert.deepEqual(
    listing.filter((file) => file.startsWith('src/')),
    [INSTALLED_SOURCES.nativeBuildScript, INSTALLED_SOURCES.nativeSource].sort(),
  );
});

test('from the installed files alone, the agent image sources are found beside dist/cli.js', () => {
  const root = findInstallationRoot(join(installed, 'dist'));
  assert.equal(root, installed);
  const sources = locateAgentImageSources(root);
  assert.deepEqual(sources, {
    root: installed,
    dockerfile: join(installed, 'images', 'agent', 'Dockerfile'),
    prompt: join(installed, 'images', 'agent', 'CLAUDE.md'),
    bundles: {
      agentd: join(installed, 'dist', 'agentd.js'),
      credentialHelper: join(installed, 'dist', 'git-credential-clawker.js'),
      opener: join(installed, 'dist', 'clawker-open.js'),
    },
    nativeSource: join(installed, 'src', 'agentd', 'native', 'agentd_proc.c'),
    nativeBuildScript: join(installed, 'src', 'agentd', 'native', 'build.sh'),
    napiHeaders: join(installed, 'dist', 'node-api-headers'),
  });
  assert.deepEqual(filesBelow(sources.napiHeaders, sources.napiHeaders).sort(), napiHeaderNames().sort());
});

test('the installed CLI and editor core run without node_modules', () => {
  const project = join(work, 'project');
  mkdirSync(project);
  writeFileSync(join(project, '.clawker.yaml'), 'security:\n  firewall:\n    rules:\n      - dst: api.example.com\n        proto: tls\n');
  const cli = spawnSync(process.execPath, [join(installed, 'dist', 'cli.js'), 'validate'], { cwd: project, encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /^\.clawker\.yaml:5:16: info: 'tls' is the legacy name of 'https'/);
  const core = spawnSync(
    process.execPath,
    ['-e', `const core = require(${JSON.stringify(join(installed, 'dist', 'editorCore.js'))}); process.stdout.write(typeof core.loadProject + ' ' + typeof core.Policy)`],
    { cwd: work, encoding: 'utf8' },
  );
  assert.equal(core.status, 0, core.stderr);
  assert.equal(core.stdout, 'function function');
});
