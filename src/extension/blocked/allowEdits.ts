/**
 * Allowing a blocked domain in `.clawker.yaml`: the core says what to offer (allowChoices) and
 * which minimal text edits make it (allowInProject); here they become WorkspaceEdits. The code
 * action only edits; the command and the notification's buttons also save, which is the act that
 * applies the file (the on-save handler runs `clawker firewall refresh`).
 */
import * as vscode from 'vscode';
import type { ProjectEdit } from '../../core/config/projectEdits';
import type { AllowChoice, BlockedEntry } from '../../core/editor/blockedRequests';
import { editorCore } from '../lazy';
import type { WorkspaceProjectFile } from './projectFile';

/** A choice with the edit it makes, or why the file cannot be edited to allow it (a deny rule, broken YAML). */
export type PreparedChoice = { readonly choice: AllowChoice; readonly edit: ProjectEdit } | { readonly choice: AllowChoice; readonly error: string };

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The allow choices for an entry, each with the edit it makes to `text`. */
export function prepareChoices(entry: BlockedEntry, text: string): PreparedChoice[] {
  const core = editorCore();
  return core.allowChoices(entry, core.wildcardParentOf).map((choice) => {
    try {
      return { choice, edit: core.allowInProject(text, choice.request) };
    } catch (e) {
      return { choice, error: errorText(e) };
    }
  });
}

/** The project edit as a WorkspaceEdit on the open document (offsets are the document's). */
export function workspaceEditOf(document: vscode.TextDocument, edit: ProjectEdit): vscode.WorkspaceEdit {
  const workspaceEdit = new vscode.WorkspaceEdit();
  for (const e of edit.edits) {
    workspaceEdit.replace(document.uri, new vscode.Range(document.positionAt(e.offset), document.positionAt(e.offset + e.length)), e.text);
  }
  return workspaceEdit;
}

/**
 * Applies one choice to the project file (creating `.clawker.yaml` in the first folder when there
 * is none) and saves it. False when nothing was written (already allowed, no folder, a failure).
 */
export async function allowAndSave(project: WorkspaceProjectFile, entry: BlockedEntry, title: string, log: vscode.LogOutputChannel): Promise<boolean> {
  const existing = await project.locate();
  const target = existing ?? project.newFileUri();
  if (!target) {
    void vscode.window.showWarningMessage(`Open the project folder to allow ${entry.domain}: its .clawker.yaml holds the firewall rules.`);
    return false;
  }
  try {
    const document = existing ? await vscode.workspace.openTextDocument(existing) : undefined;
    // Computed now, on the text as it is: the document may have changed since the choice was offered.
    const prepared = prepareChoices(entry, document?.getText() ?? '').find((p) => p.choice.title === title);
    if (!prepared) return false;
    if ('error' in prepared) throw new Error(prepared.error);
    const name = vscode.workspace.asRelativePath(target);
    if (prepared.edit.already) {
      void vscode.window.showInformationMessage(`${name} already allows this (${prepared.edit.description}). If ${entry.agent} is still blocked, run "Clawker: Refresh Firewall".`);
      return false;
    }
    let edit: vscode.WorkspaceEdit;
    if (document) edit = workspaceEditOf(document, prepared.edit);
    else {
      edit = new vscode.WorkspaceEdit();
      edit.createFile(target, { ignoreIfExists: true });
      edit.insert(target, new vscode.Position(0, 0), prepared.edit.text);
    }
    if (!(await vscode.workspace.applyEdit(edit))) throw new Error(`VS Code did not apply the edit to ${name}`);
    const saved = await (document ?? (await vscode.workspace.openTextDocument(target))).save();
    log.info(`${prepared.edit.description} (${name})${saved ? '' : ': not saved'}`);
    if (!saved) void vscode.window.showWarningMessage(`${name} was edited but not saved: save it to apply the rule.`);
    return saved;
  } catch (e) {
    log.error(`allowing ${entry.domain}: ${errorText(e)}`);
    void vscode.window.showErrorMessage(`Could not allow ${entry.domain}: ${errorText(e)}`);
    return false;
  }
}

/** Asks which choice, then applies and saves it. */
export async function pickAndAllow(project: WorkspaceProjectFile, entry: BlockedEntry, log: vscode.LogOutputChannel): Promise<boolean> {
  const uri = await project.locate();
  const text = uri ? (await vscode.workspace.openTextDocument(uri)).getText() : '';
  const detail = (p: PreparedChoice): string => ('error' in p ? `Cannot: ${p.error}` : p.edit.description);
  const picked = await vscode.window.showQuickPick(
    prepareChoices(entry, text).map((p) => ({ label: p.choice.title, detail: detail(p) })),
    { title: `Allow ${entry.domain} for agent ${entry.agent}`, placeHolder: 'What to add to .clawker.yaml (it is saved, which applies it)' },
  );
  return picked ? allowAndSave(project, entry, picked.label, log) : false;
}
