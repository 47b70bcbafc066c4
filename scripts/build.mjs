// Bundles each entry point into one CommonJS file under dist/ (one file per process).
import { build } from 'esbuild';

const production = process.argv.includes('--production');

/** Entry points: later issues add the control plane and the agent supervisor here. */
const entryPoints = {
  extension: 'src/extension/extension.ts',
  server: 'src/server/server.ts',
  cli: 'src/cli/main.ts',
};

await build({
  entryPoints,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outdir: 'dist',
  external: ['vscode'],
  sourcemap: production ? false : 'linked',
  minify: production,
  legalComments: 'none',
  logLevel: 'warning',
});
