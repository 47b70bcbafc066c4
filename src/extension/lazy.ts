/**
 * The extension's parts that are loaded on first use, each bundled on its own beside dist/extension.js
 * (scripts/build.mjs) so activation parses neither:
 *   editorCore()          dist/editorCore.js: the pure core (zod, yaml, the policy compiler)
 *   languageClientStart() dist/languageClientStart.js: vscode-languageclient
 * Under tsx (unit tests, bench) the TypeScript module of the same name is loaded instead. The path is
 * not a literal, which keeps esbuild from bundling the module into extension.js.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export type EditorCore = typeof import('./editorCore');
export type LanguageClientStart = typeof import('./languageClientStart');

const loaded = new Map<string, unknown>();

function requireBeside<T>(name: string): T {
  if (!loaded.has(name)) {
    const bundled = join(__dirname, `${name}.js`);
    loaded.set(name, require(existsSync(bundled) ? bundled : join(__dirname, name)));
  }
  return loaded.get(name) as T;
}

export const editorCore = (): EditorCore => requireBeside<EditorCore>('editorCore');

export const languageClientStart = (): LanguageClientStart => requireBeside<LanguageClientStart>('languageClientStart');
