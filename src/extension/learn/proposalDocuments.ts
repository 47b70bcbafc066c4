/**
 * Read-only virtual documents (`clawker-proposal:`) holding a proposed `.clawker.yaml`, the right
 * side of the diff that learn mode shows before anything is written.
 */
import * as vscode from 'vscode';

export const PROPOSAL_SCHEME = 'clawker-proposal';

export class ProposalDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly contents = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private shown = 0;

  /** A new document with `text`, named like `file` (so it gets the same language). */
  show(file: vscode.Uri, text: string): vscode.Uri {
    const uri = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: file.path, query: String(++this.shown) });
    this.contents.set(uri.toString(), text);
    this.changed.fire(uri);
    return uri;
  }

  forget(uri: vscode.Uri): void {
    this.contents.delete(uri.toString());
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.toString()) ?? '';
  }

  dispose(): void {
    this.changed.dispose();
    this.contents.clear();
  }
}

/** Closes the diff editors whose right side is `proposal`. */
export async function closeDiffsOf(proposal: vscode.Uri): Promise<void> {
  const tabs = vscode.window.tabGroups.all
    .flatMap((g) => g.tabs)
    .filter((t) => t.input instanceof vscode.TabInputTextDiff && t.input.modified.toString() === proposal.toString());
  if (tabs.length) await vscode.window.tabGroups.close(tabs);
}
