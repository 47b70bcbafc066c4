/**
 * Workspace trust: in an untrusted workspace `.clawker.yaml` is validated and shown, but nothing is
 * started, changed or run from it (its file could name any image, mount or rule).
 */
import * as vscode from 'vscode';

export function requireTrust(): boolean {
  if (vscode.workspace.isTrusted) return true;
  const manage = 'Manage Workspace Trust';
  void vscode.window
    .showWarningMessage('Clawker starts agents and changes the firewall only in a trusted workspace: this folder is in Restricted Mode.', manage)
    .then((c) => c && vscode.commands.executeCommand('workbench.trust.manage'));
  return false;
}
