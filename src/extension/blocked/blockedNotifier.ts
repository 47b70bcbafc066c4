/**
 * A warning when an agent of this workspace is first blocked from a domain, with buttons to allow
 * it at once or show it. Quiet when the user is looking at `.clawker.yaml` (the diagnostic is
 * there), for history replayed on connect, more than once per entry, and while one is showing.
 * Setting `clawker.notifyBlocked` turns it off.
 */
import * as vscode from 'vscode';
import type { BlockedEntry } from '../../core/editor/blockedRequests';
import { editorCore } from '../lazy';
import type { WorkspaceProjectFile } from './projectFile';

/** Blocks older than this are history (the tail replayed on connect), not news. */
const RECENT_MS = 2 * 60_000;

export interface NotifierActions {
  /** Applies the allow choice with this title and saves. */
  allow(entry: BlockedEntry, choiceTitle: string): Promise<unknown>;
  show(entry: BlockedEntry): Promise<unknown>;
}

export class BlockedNotifier {
  private readonly notified = new Set<string>();
  private showing = false;

  constructor(
    private readonly project: WorkspaceProjectFile,
    private readonly actions: NotifierActions,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  async consider(entry: BlockedEntry): Promise<void> {
    if (!vscode.workspace.getConfiguration('clawker').get<boolean>('notifyBlocked', true)) return;
    if (this.showing || this.notified.has(entry.key)) return;
    if (Date.now() - Date.parse(entry.lastTime) > RECENT_MS) return;
    const active = vscode.window.activeTextEditor?.document.uri;
    if (active && (await this.project.isProjectFile(active))) return;
    if (this.showing) return; // another one started while this looked at the editor
    this.notified.add(entry.key);
    this.showing = true;
    try {
      const core = editorCore();
      const choices = core.allowChoices(entry, core.wildcardParentOf);
      const byName = choices.find((c) => c.request.kind === 'domain');
      const byParent = choices.find((c) => c.request.kind === 'wildcard');
      const buttons = new Map<string, () => Promise<unknown>>();
      if (byName) buttons.set(`Allow ${entry.domain}`, () => this.actions.allow(entry, byName.title));
      if (byParent?.request.kind === 'wildcard') buttons.set(`Allow ${byParent.request.parent}…`, () => this.actions.allow(entry, byParent.title));
      buttons.set('Show', () => this.actions.show(entry));
      const picked = await vscode.window.showWarningMessage(core.notificationMessage(entry), ...buttons.keys());
      this.showing = false;
      if (picked) await buttons.get(picked)?.();
    } catch (e) {
      this.log.error(`blocked-request notification: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.showing = false;
    }
  }
}
