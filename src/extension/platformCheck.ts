/**
 * Where the extension cannot run its agents (Windows without WSL), it says so once at activation,
 * with the way out; validation of `.clawker.yaml` keeps working everywhere.
 */
import * as vscode from 'vscode';
import { hostSupport } from '../core/engine/engineSupport';

const REOPEN_IN_WSL = 'Reopen Folder in WSL';

export function registerPlatformCheck(log: vscode.LogOutputChannel): void {
  const verdict = hostSupport({ platform: process.platform, env: process.env, ...(vscode.env.remoteName ? { remoteName: vscode.env.remoteName } : {}) });
  void vscode.commands.executeCommand('setContext', 'clawker.unsupportedHost', !verdict.ok);
  if (verdict.ok) return;
  log.warn(`${verdict.what}; next: ${verdict.next}`);
  const actions = process.platform === 'win32' ? [REOPEN_IN_WSL] : [];
  void vscode.window.showErrorMessage(`Clawker: ${verdict.what}. Next: ${verdict.next}.`, ...actions).then((choice) => {
    if (choice === REOPEN_IN_WSL) void vscode.commands.executeCommand('remote-wsl.reopenInWSL');
  });
}
