import * as vscode from 'vscode';
import { findProjectFiles } from './projectFiles';

/** A starting point that matches the spec's "Full Working Example". */
const STARTER_CONFIG = `# Clawker project configuration. Everything not allowed here is blocked.
security:
  firewall:
    add_domains:
      - github.com
      - api.github.com
    rules:
      - dst: github.com
        proto: ssh
        port: "22"
        action: allow
`;

async function openProjectFile(): Promise<vscode.TextDocument | undefined> {
  const [file] = await findProjectFiles();
  if (file) return vscode.workspace.openTextDocument(file);
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    void vscode.window.showInformationMessage('Open a folder first: .clawker.yaml lives at the root of your project.');
    return undefined;
  }
  const create = 'Create .clawker.yaml';
  const choice = await vscode.window.showInformationMessage(`No .clawker.yaml in ${folder.name}.`, create);
  if (choice !== create) return undefined;
  const uri = vscode.Uri.joinPath(folder.uri, '.clawker.yaml');
  await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(STARTER_CONFIG));
  return vscode.workspace.openTextDocument(uri);
}

export function registerCommands(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('clawker.openConfig', async () => {
      const doc = await openProjectFile();
      if (doc) await vscode.window.showTextDocument(doc);
    }),
    vscode.commands.registerCommand('clawker.validate', async () => {
      const doc = await openProjectFile();
      if (!doc) return;
      await vscode.window.showTextDocument(doc);
      await vscode.commands.executeCommand('workbench.actions.view.problems');
    }),
    vscode.commands.registerCommand('clawker.showLog', () => log.show()),
  );
}
