/**
 * Puts `clawker` on the PATH of every integrated terminal: a launcher script in the extension's
 * global storage (never in the workspace, which the agent can write), prepended to PATH through the
 * environment variable collection. Not on Windows, where agents do not run.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import * as vscode from 'vscode';
import { writeFileAtomic } from '../platform/files';
import { launcherScript } from './terminalLauncherScript';

export function registerTerminalLauncher(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
  if (process.platform === 'win32') return;
  const binDir = join(context.globalStorageUri.fsPath, 'bin');
  const launcher = join(binDir, 'clawker');
  const script = launcherScript(process.execPath, join(context.extensionPath, 'dist', 'cli.js'));
  // The file is written after activation returns (a synced write costs milliseconds); terminals
  // opened before it exists find no clawker on PATH for that moment, nothing worse.
  setImmediate(() => {
    try {
      mkdirSync(binDir, { recursive: true, mode: 0o700 });
      // The extension's path changes with each update: rewrite only when the text differs.
      if (!existsSync(launcher) || readFileSync(launcher, 'utf8') !== script) writeFileAtomic(launcher, script, { mode: 0o755 });
    } catch (e) {
      log.warn(`the clawker command for terminals could not be written to ${launcher}: ${(e as Error).message}`);
    }
  });
  const env = context.environmentVariableCollection;
  env.description = 'Puts the `clawker` command on PATH (runs the CLI bundled with the extension).';
  env.prepend('PATH', `${binDir}${delimiter}`);
}
