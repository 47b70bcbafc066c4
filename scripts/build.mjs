// Bundles each entry point into one CommonJS file under dist/ (one file per process), copies the
// Node-API headers the agent image is compiled against beside them (a .vsix carries no node_modules),
// and holds dist/extension.js to its budget.
//
//   node scripts/build.mjs [--production] [--outdir DIR]    (default dist/ of this checkout)
import { build } from 'esbuild';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const production = args.includes('--production');
const outdirAt = args.indexOf('--outdir');
const outdir = outdirAt >= 0 ? resolve(args[outdirAt + 1] ?? '') : join(ROOT, 'dist');
if (outdirAt >= 0 && !args[outdirAt + 1]) {
  console.error('build: --outdir needs a directory');
  process.exit(2);
}

const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

const shared = {
  absWorkingDir: ROOT,
  // `clawker --version` (src/cli/main.ts): the package's version, in every bundle that asks.
  define: { __CLAWKER_VERSION__: JSON.stringify(version) },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  outdir,
  // ssh2 (under dockerode) loads optional native addons (its crypto binding, cpu-features) inside
  // try/catch and falls back to pure JavaScript: leave those requires to fail at run time.
  external: ['*.node'],
  sourcemap: production ? false : 'linked',
  minify: production,
  legalComments: 'none',
  logLevel: 'warning',
};

const EXTENSION_ENTRY = 'src/extension/extension.ts';

/** Processes that run in VS Code's Node (20+) or the user's (engines: node >= 20). */
const entryPoints = {
  extension: EXTENSION_ENTRY,
  // Loaded by the extension on first use (src/extension/lazy.ts), never at activation.
  editorCore: 'src/extension/editorCore.ts',
  languageClientStart: 'src/extension/languageClientStart.ts',
  server: 'src/server/server.ts',
  cli: 'src/cli/main.ts',
  // The host proxy runs on the user's machine, started by the lifecycle code (src/hostproxy/).
  hostproxy: 'src/hostproxy/main.ts',
};

/**
 * Processes that run inside our images, in the image's Node: node:20 on the default base, but
 * Debian bookworm's nodejs 18 when the image is built on a plain Debian base (the test bed; see
 * images/controlplane/Dockerfile). Hence a separate build with target node18. esbuild lowers only
 * syntax: code reachable from these entries must not use APIs newer than Node 18 either.
 */
const imageEntryPoints = {
  controlplane: 'src/controlplane/main.ts',
  // PID 1 of every agent container (images/agent).
  agentd: 'src/agentd/main.ts',
  // Tools on the agent image's PATH (images/agent; src/agentTools): git's credential helper and $BROWSER.
  'git-credential-clawker': 'src/agentTools/gitCredentialMain.ts',
  'clawker-open': 'src/agentTools/openUrlMain.ts',
};

/**
 * dist/extension.js is parsed at every activation: it may hold the extension's own small modules,
 * never the packages lazy.ts loads on first use (behind the core and the language client).
 */
const EXTENSION_BUDGET_BYTES = 150 * 1024; // minified, as shipped: checked by --production builds
const NOT_IN_EXTENSION = /(^|\/)node_modules\/(zod|yaml|js-yaml|re2js|vscode-languageclient|vscode-languageserver[^/]*|vscode-jsonrpc)\//;

/** What is wrong with extension.js in this build's metafile: problems fail the build, notes are printed. */
function checkExtension(metafile) {
  const output = Object.values(metafile.outputs).find((o) => o.entryPoint === EXTENSION_ENTRY);
  if (!output) return { problems: [`no output for ${EXTENSION_ENTRY} in the build`], notes: [] };
  const inputs = Object.entries(output.inputs)
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => path);
  const problems = [];
  const heavy = [...new Set(inputs.map((path) => NOT_IN_EXTENSION.exec(path)?.[2]).filter(Boolean))];
  if (heavy.length) problems.push(`it bundles ${heavy.join(', ')}: load them on first use, through src/extension/lazy.ts`);
  if (production && output.bytes > EXTENSION_BUDGET_BYTES) {
    problems.push(`${output.bytes} bytes, over its budget of ${EXTENSION_BUDGET_BYTES}: move what activation does not need behind src/extension/lazy.ts`);
  }
  // Small dependency-free core modules (agent names, durations, the API's constants) may be bundled:
  // one source of truth beats a copy. What they must not pull in is caught above.
  return { problems, notes: [] };
}

/** The Node-API headers (node_api.h and what it includes) for the agent image's native stage. */
function copyNapiHeaders() {
  const { include_dir: includeDir } = createRequire(join(ROOT, 'package.json'))('node-api-headers');
  const target = join(outdir, 'node-api-headers');
  rmSync(target, { recursive: true, force: true });
  cpSync(includeDir, target, { recursive: true });
}

const [hostBuild] = await Promise.all([
  build({ ...shared, entryPoints, target: 'node20', external: [...shared.external, 'vscode'], metafile: true }),
  build({ ...shared, entryPoints: imageEntryPoints, target: 'node18' }),
]);
copyNapiHeaders();
const { problems, notes } = checkExtension(hostBuild.metafile);
for (const note of notes) console.warn(`build: note: ${note}`);
if (problems.length) {
  console.error(`build: dist/extension.js is too heavy to load at every activation:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exit(1);
}
