import * as vscode from 'vscode';

/** The project files clawker reads, in order of preference. */
export const PROJECT_FILE_GLOB = '{**/.clawker.yaml,**/.clawker/clawker.yaml}';

export async function findProjectFiles(): Promise<vscode.Uri[]> {
  return vscode.workspace.findFiles(PROJECT_FILE_GLOB, '**/node_modules/**', 20);
}
