/**
 * The workspace's project file, where blocked-request diagnostics go and allow edits are written:
 * the first folder's `.clawker.yaml`, else its `.clawker/clawker.yaml`. Tracks creation, deletion
 * and saves, and keeps the policy of the saved text (what `clawker firewall refresh` applies).
 */
import * as vscode from 'vscode';
import type { NormalizedRule } from '../../core/firewall/rule';
import type { Policy } from '../../core/policy/policy';
import { editorCore } from '../lazy';

const PATTERN = '{.clawker.yaml,.clawker/clawker.yaml}';

/**
 * The policy a `.clawker.yaml` text gives together with the rule store's runtime rules (the project
 * layer is empty when the text has errors or is absent), i.e. what the firewall would enforce.
 */
export function policyOfText(text: string | undefined, runtime: readonly NormalizedRule[] = []): Policy {
  const core = editorCore();
  return new core.Policy({ project: text === undefined ? [] : core.loadProject(text).rules, runtime });
}

export class WorkspaceProjectFile implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  /** The file appeared, disappeared or was written. */
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private located: Promise<vscode.Uri | undefined> | undefined;
  private saved: Promise<string | undefined> | undefined;

  /** `runtimeRules`: the rule store's rules, which allow too. */
  constructor(readonly runtimeRules: () => readonly NormalizedRule[] = () => []) {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (folder) {
      const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(folder, PATTERN));
      const forget = (): void => {
        this.located = undefined;
        this.saved = undefined;
        this.changed.fire();
      };
      this.disposables.push(watcher, watcher.onDidCreate(forget), watcher.onDidDelete(forget), watcher.onDidChange(forget));
    }
    this.disposables.push(
      vscode.workspace.onDidChangeWorkspaceFolders(() => {
        this.located = undefined;
        this.saved = undefined;
        this.changed.fire();
      }),
    );
  }

  /** The project file, if the first workspace folder has one. */
  locate(): Promise<vscode.Uri | undefined> {
    this.located ??= findProjectFile();
    return this.located;
  }

  /** Where a new project file goes: the first folder's `.clawker.yaml`. */
  newFileUri(): vscode.Uri | undefined {
    const folder = vscode.workspace.workspaceFolders?.[0];
    return folder ? vscode.Uri.joinPath(folder.uri, '.clawker.yaml') : undefined;
  }

  /** The policy of the file as saved, with the rule store's current runtime rules. */
  async savedPolicy(): Promise<Policy> {
    this.saved ??= this.readSaved();
    return this.policyOf(await this.saved);
  }

  /** The policy of a text of this file, with the rule store's current runtime rules. */
  policyOf(text: string | undefined): Policy {
    return policyOfText(text, this.runtimeRules());
  }

  /** Whether `uri` is the project file. */
  async isProjectFile(uri: vscode.Uri): Promise<boolean> {
    return (await this.locate())?.toString() === uri.toString();
  }

  private async readSaved(): Promise<string | undefined> {
    const uri = await this.locate();
    if (!uri) return undefined;
    try {
      return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
    } catch {
      return undefined;
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

async function findProjectFile(): Promise<vscode.Uri | undefined> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) return undefined;
  const found = await vscode.workspace.findFiles(new vscode.RelativePattern(folder, PATTERN), null, 2);
  return found.find((u) => u.path.endsWith('/.clawker.yaml')) ?? found[0];
}
