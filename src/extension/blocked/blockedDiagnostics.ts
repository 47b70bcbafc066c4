/**
 * One warning on `.clawker.yaml` per domain an agent of this workspace was blocked from, at the
 * `add_domains` key (else `firewall`, `security`, the first line), with quick fixes that allow it.
 * Judged against the document as it is, unsaved edits included: a fix makes its warning go away
 * at once, and undoing it brings the warning back.
 */
import * as vscode from 'vscode';
import type { NormalizedRule } from '../../core/firewall/rule';
import type { BlockedEntry } from '../../core/editor/blockedRequests';
import type { Policy } from '../../core/policy/policy';
import { editorCore } from '../lazy';
import { prepareChoices, workspaceEditOf } from './allowEdits';
import type { BlockedModel } from './blockedModel';
import type { WorkspaceProjectFile } from './projectFile';

export const DIAGNOSTIC_SOURCE = 'clawker';
export const DIAGNOSTIC_CODE = 'blocked-egress';
const EDIT_DELAY_MS = 300;

interface Published {
  readonly diagnostic: vscode.Diagnostic;
  readonly entry: BlockedEntry;
}

const codeOf = (d: vscode.Diagnostic): unknown => (typeof d.code === 'object' ? d.code.value : d.code);

export class BlockedDiagnostics implements vscode.CodeActionProvider, vscode.Disposable {
  static readonly providedCodeActionKinds = [vscode.CodeActionKind.QuickFix];
  private readonly collection = vscode.languages.createDiagnosticCollection('clawker-egress');
  private published: { uri: string; items: readonly Published[] } = { uri: '', items: [] };
  private policyCache: { uri: string; version: number; runtime: readonly NormalizedRule[]; policy: Policy } | undefined;
  private queue: Promise<void> = Promise.resolve();
  private pending = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly model: BlockedModel,
    private readonly project: WorkspaceProjectFile,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** The warning an entry has now, if any (for "Show"). */
  diagnosticFor(key: string): vscode.Diagnostic | undefined {
    return this.published.items.find((p) => p.entry.key === key)?.diagnostic;
  }

  /** Recomputes after edits settle. */
  updateSoon(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.update();
    }, EDIT_DELAY_MS);
  }

  /** Recomputes, one run at a time; calls during a run are folded into one more run. */
  update(): Promise<void> {
    if (this.pending) return this.queue;
    this.pending = true;
    this.queue = this.queue.then(async () => {
      this.pending = false;
      try {
        await this.compute();
      } catch (e) {
        this.log.error(`blocked-request diagnostics: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
    return this.queue;
  }

  private async compute(): Promise<void> {
    const uri = await this.project.locate();
    const entries = this.model.entries();
    if (!uri || entries.length === 0) return this.publish(uri, []);
    const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString()) ?? (await vscode.workspace.openTextDocument(uri));
    const core = editorCore();
    const text = document.getText();
    const policy = this.policyOf(document, text);
    const anchor = core.anchorInProject(text);
    const range = new vscode.Range(document.positionAt(anchor.offset), document.positionAt(anchor.offset + anchor.length));
    const items = entries
      .filter((entry) => core.stillBlocked(entry, policy))
      .map((entry): Published => {
        const diagnostic = new vscode.Diagnostic(range, core.diagnosticMessage(entry), vscode.DiagnosticSeverity.Warning);
        diagnostic.source = DIAGNOSTIC_SOURCE;
        diagnostic.code = DIAGNOSTIC_CODE;
        return { diagnostic, entry };
      });
    this.publish(uri, items);
  }

  private policyOf(document: vscode.TextDocument, text: string): Policy {
    const uri = document.uri.toString();
    const runtime = this.project.runtimeRules();
    const cached = this.policyCache;
    if (cached && cached.uri === uri && cached.version === document.version && cached.runtime === runtime) return cached.policy;
    const policy = this.project.policyOf(text);
    this.policyCache = { uri, version: document.version, runtime, policy };
    return policy;
  }

  private publish(uri: vscode.Uri | undefined, items: readonly Published[]): void {
    this.collection.clear();
    if (uri && items.length > 0) this.collection.set(uri, items.map((p) => p.diagnostic));
    this.published = { uri: uri?.toString() ?? '', items };
  }

  /** The entry behind a diagnostic VS Code hands back (a copy: matched by its words). */
  private entryOf(diagnostic: vscode.Diagnostic): BlockedEntry | undefined {
    const items = this.published.items;
    const exact = items.find((p) => p.diagnostic.message === diagnostic.message);
    // The count or time in the message may have moved on since VS Code took its copy.
    const found = exact ?? items.find((p) => diagnostic.message.startsWith(`${editorCore().notificationMessage(p.entry)} `));
    return found ? (this.model.get(found.entry.key) ?? found.entry) : undefined;
  }

  provideCodeActions(document: vscode.TextDocument, _range: vscode.Range, context: vscode.CodeActionContext): vscode.CodeAction[] {
    if (document.uri.toString() !== this.published.uri) return [];
    const actions: vscode.CodeAction[] = [];
    const titles = new Set<string>();
    for (const diagnostic of context.diagnostics) {
      if (diagnostic.source !== DIAGNOSTIC_SOURCE || codeOf(diagnostic) !== DIAGNOSTIC_CODE) continue;
      const entry = this.entryOf(diagnostic);
      if (!entry) continue;
      let first = true;
      for (const prepared of prepareChoices(entry, document.getText())) {
        const { title } = prepared.choice;
        if (titles.has(title) || ('edit' in prepared && prepared.edit.already)) continue;
        titles.add(title);
        const action = new vscode.CodeAction(title, vscode.CodeActionKind.QuickFix);
        action.diagnostics = [diagnostic];
        // A fix the file cannot take (a deny rule, broken YAML) is listed greyed out, saying why.
        if ('error' in prepared) action.disabled = { reason: prepared.error };
        else {
          action.edit = workspaceEditOf(document, prepared.edit);
          action.isPreferred = first;
          first = false;
        }
        actions.push(action);
      }
    }
    return actions;
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.collection.dispose();
  }
}
