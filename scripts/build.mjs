// Bundles each entry point into one CommonJS file under dist/ (one file per process).
import { build } from 'esbuild';

const production = process.argv.includes('--production');

const shared = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  outdir: 'dist',
  // ssh2 (under dockerode) loads optional native addons (its crypto binding, cpu-features) inside
  // try/catch and falls back to pure JavaScript: leave those requires to fail at run time.
  external: ['*.node'],
  sourcemap: production ? false : 'linked',
  minify: production,
  legalComments: 'none',
  logLevel: 'warning',
};

/** Processes that run in VS Code's Node (20+) or the user's (engines: node >= 20). */
const entryPoints = {
  extension: 'src/extension/extension.ts',
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

await Promise.all([
  build({ ...shared, entryPoints, target: 'node20', external: [...shared.external, 'vscode'] }),
  build({ ...shared, entryPoints: imageEntryPoints, target: 'node18' }),
]);
