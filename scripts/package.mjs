// Packages the extension as platform-specific .vsix files. The engine runs Linux wherever the
// editor runs (Docker Desktop, OrbStack and Colima in a Linux VM on macOS; WSL2), so each package
// carries the Linux binaries (bpfman, CoreDNS) for its machine's architecture: the macOS ones too.
// `clawker firewall up` builds the stack images on the user's engine from them
// (src/platform/docker/stackImages.ts).
//
//   node scripts/package.mjs                      dist/clawker.vsix, for this machine (npm run package)
//   node scripts/package.mjs --target TARGET|all [--out DIR]
//     TARGET: linux-x64, linux-arm64, darwin-x64, darwin-arm64; writes DIR/clawker-TARGET.vsix
//     (default DIR: dist/)
//
// Steps: a production build (scripts/build.mjs), the binaries for the targets' architectures
// (scripts/build-images.sh --binaries-only), then `vsce package --target` with the .vscodeignore
// plus that architecture's binaries (a generated ignore file: one package, one architecture).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** VS Code's platform targets we publish, and the Linux architecture of the engine beside each. */
export const TARGETS = {
  'linux-x64': 'amd64',
  'linux-arm64': 'arm64',
  'darwin-x64': 'amd64',
  'darwin-arm64': 'arm64',
};

/** The binaries a package carries for its engine architecture (relative to the package root). */
export const engineBinaries = (arch) => [`dist/engine/linux-${arch}/bpfman`, `dist/engine/linux-${arch}/coredns`];

/** The .vscodeignore of one target: the shared list, and that architecture's binaries. */
export function ignoreFileText(arch, base = readFileSync(join(ROOT, '.vscodeignore'), 'utf8')) {
  return `${base.trimEnd()}\n# The Linux binaries for this package's engine architecture (scripts/package.mjs).\n${engineBinaries(arch)
    .map((file) => `!${file}`)
    .join('\n')}\n`;
}

function hostTarget() {
  const arch = process.arch === 'x64' ? 'x64' : process.arch === 'arm64' ? 'arm64' : undefined;
  const os = process.platform === 'linux' || process.platform === 'darwin' ? process.platform : undefined;
  return arch && os ? `${os}-${arch}` : 'linux-x64';
}

function main(args) {
  const at = (flag) => {
    const i = args.indexOf(flag);
    if (i < 0) return undefined;
    if (!args[i + 1]) throw new Error(`${flag} needs a value`);
    return args[i + 1];
  };
  const named = at('--target');
  const target = named ?? hostTarget();
  const out = resolve(at('--out') ?? join(ROOT, 'dist'));
  const targets = target === 'all' ? Object.keys(TARGETS) : [target];
  for (const t of targets) if (!(t in TARGETS)) throw new Error(`unknown target ${t}: one of ${Object.keys(TARGETS).join(', ')}, or all`);
  const arches = [...new Set(targets.map((t) => TARGETS[t]))];

  const run = (file, argv) => execFileSync(file, argv, { cwd: ROOT, stdio: 'inherit' });
  run(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), '--production']);
  run('bash', [join(ROOT, 'scripts', 'build-images.sh'), '--binaries-only', '--arch', arches.length > 1 ? 'all' : arches[0]]);

  mkdirSync(out, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'clawker-package-'));
  try {
    for (const t of targets) {
      const ignoreFile = join(work, `${t}.vscodeignore`);
      writeFileSync(ignoreFile, ignoreFileText(TARGETS[t]));
      const vsix = join(out, named === undefined ? 'clawker.vsix' : `clawker-${t}.vsix`);
      run(join(ROOT, 'node_modules', '.bin', 'vsce'), ['package', '--no-dependencies', '--allow-missing-repository', '--target', t, '--ignoreFile', ignoreFile, '-o', vsix]);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    console.error(`package: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
