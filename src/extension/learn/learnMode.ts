/**
 * Learn mode: record what the firewall blocks for one agent while the user works, then propose the
 * least-privilege `.clawker.yaml` rules that would have allowed what the user approves. Nothing is
 * written before the user has seen the diff and pressed Apply; applying is one WorkspaceEdit (one
 * undo step) and a save, which makes the on-save handler refresh the firewall.
 */
import * as vscode from 'vscode';
import type { AgentSummary } from '../../core/agents/lifecycle';
import type { ObservedRequest, Proposal } from '../../core/learn/learnProposal';
import { editorCore } from '../lazy';
import type { AgentDirectory, EgressFeed } from '../stack/contracts';
import { closeDiffsOf, PROPOSAL_SCHEME, ProposalDocuments } from './proposalDocuments';
import { Recording } from './recording';

export interface LearnModeDeps {
  readonly feed: EgressFeed;
  readonly agents: AgentDirectory;
  readonly log: vscode.LogOutputChannel;
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The first folder's project file, existing or where a new one goes. */
async function projectFile(): Promise<{ uri: vscode.Uri; exists: boolean } | undefined> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) return undefined;
  const candidates = [vscode.Uri.joinPath(folder.uri, '.clawker.yaml'), vscode.Uri.joinPath(folder.uri, '.clawker', 'clawker.yaml')];
  for (const uri of candidates) {
    try {
      await vscode.workspace.fs.stat(uri);
      return { uri, exists: true };
    } catch {
      // not there: try the next one
    }
  }
  return { uri: candidates[0]!, exists: false };
}

type RequestPick = vscode.QuickPickItem & { readonly observed?: ObservedRequest; readonly wildcard?: string };

class LearnMode implements vscode.Disposable {
  private recording: Recording | undefined;
  private readonly status: vscode.StatusBarItem;
  readonly proposals = new ProposalDocuments();

  constructor(private readonly deps: LearnModeDeps) {
    this.status = vscode.window.createStatusBarItem('clawker.learn', vscode.StatusBarAlignment.Left, 50);
    this.status.name = 'Clawker Learning';
    this.status.command = 'clawker.learn.stop';
    this.status.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
  }

  async start(): Promise<void> {
    if (this.recording) {
      const stop = 'Stop and Propose Rules';
      const choice = await vscode.window.showInformationMessage(`Already learning the egress of ${this.recording.agent.agent}.`, stop);
      if (choice === stop) await this.stop();
      return;
    }
    const agent = await this.pickAgent();
    if (!agent) return;
    this.recording = new Recording(agent, this.deps.feed, this.deps.agents, editorCore().observedKey, (blocked) => this.showStatus(agent, blocked));
    this.showStatus(agent, 0);
    void vscode.commands.executeCommand('setContext', 'clawker.learning', true);
    this.deps.log.info(`learn: recording what the firewall blocks for ${agent.name}`);
    if (!this.deps.feed.connected) {
      void vscode.window.showWarningMessage(
        `Learning ${agent.agent}: the firewall's event stream is not connected, so nothing is recorded until the firewall runs.`,
      );
    }
  }

  private showStatus(agent: AgentSummary, blocked: number): void {
    const core = editorCore();
    this.status.text = core.learningStatusText(agent.agent, blocked);
    this.status.tooltip = core.learningTooltip(agent.agent);
    this.status.show();
  }

  /** The agent to learn from: the workspace's only one, or the one picked (running ones first). */
  private async pickAgent(): Promise<AgentSummary | undefined> {
    let agents = this.deps.agents.ofWorkspace();
    if (agents.length === 0) {
      await this.deps.agents.refresh();
      agents = this.deps.agents.ofWorkspace();
    }
    if (agents.length === 0) {
      const run = 'Run Agent';
      const choice = await vscode.window.showInformationMessage('No agent of this workspace to learn from: run one first, then start learning.', run);
      if (choice === run) void vscode.commands.executeCommand('clawker.agent.run');
      return undefined;
    }
    if (agents.length === 1) return agents[0];
    const ordered = [...agents].sort((a, b) => Number(b.state === 'running') - Number(a.state === 'running') || a.agent.localeCompare(b.agent));
    const picked = await vscode.window.showQuickPick(
      ordered.map((agent) => ({ label: agent.agent, description: `${agent.project} · ${agent.state}`, detail: agent.status, agent })),
      { title: 'Start Learning Egress', placeHolder: 'Which agent? What the firewall blocks for it is recorded until you stop.' },
    );
    return picked?.agent;
  }

  async stop(): Promise<void> {
    const recording = this.recording;
    if (!recording) {
      const start = 'Start Learning';
      const choice = await vscode.window.showInformationMessage('Not learning: start first, work with the agent, then stop to review the rules.', start);
      if (choice === start) await this.start();
      return;
    }
    const core = editorCore();
    const observed = core.observedRequests(recording.events);
    const name = recording.agent.agent;
    // Escape in the list keeps recording: what was learned so far is not thrown away.
    const picks = observed.length === 0 ? { approved: [], wildcards: [] } : await this.pickApproved(observed, name);
    if (picks === undefined) {
      void vscode.window.showInformationMessage(`Still learning ${name}: stop again when you are ready to review.`);
      return;
    }
    if (this.recording !== recording) return; // stopped meanwhile (a second stop)
    this.recording = undefined;
    recording.dispose();
    this.status.hide();
    void vscode.commands.executeCommand('setContext', 'clawker.learning', false);
    this.deps.log.info(`learn: stopped for ${recording.agent.name}: ${observed.length} blocked request(s)`);
    if (observed.length === 0) {
      void vscode.window.showInformationMessage(`Nothing was blocked for ${name} while learning.`);
      return;
    }
    if (picks.approved.length === 0 && picks.wildcards.length === 0) {
      void vscode.window.showInformationMessage(`Nothing approved: ${name}'s rules stay as they are.`);
      return;
    }
    await this.propose(picks.approved, picks.wildcards, name);
  }

  private async pickApproved(observed: readonly ObservedRequest[], agent: string): Promise<{ approved: ObservedRequest[]; wildcards: string[] } | undefined> {
    const core = editorCore();
    const suggestions = core.wildcardSuggestions(observed);
    const items: RequestPick[] = observed.map((o) => ({ label: core.observedLabel(o), detail: core.observedDetail(o), picked: true, observed: o }));
    if (suggestions.length > 0) {
      items.push({ label: 'Wildcards: broader than what was seen', kind: vscode.QuickPickItemKind.Separator });
      for (const s of suggestions) items.push({ label: core.wildcardLabel(s), picked: false, wildcard: s.parent });
    }
    const picked = await vscode.window.showQuickPick(items, {
      canPickMany: true,
      ignoreFocusOut: true,
      matchOnDetail: true,
      title: `Blocked for ${agent} while learning`,
      placeHolder: 'Approve what the agent may do. The rules are shown as a diff before anything is written.',
    });
    if (!picked) return undefined;
    return {
      approved: picked.flatMap((p) => (p.observed ? [p.observed] : [])),
      wildcards: picked.flatMap((p) => (p.wildcard ? [p.wildcard] : [])),
    };
  }

  private async propose(approved: readonly ObservedRequest[], wildcards: readonly string[], agent: string): Promise<void> {
    const core = editorCore();
    const target = await projectFile();
    if (!target) {
      void vscode.window.showWarningMessage('Open the project folder first: its .clawker.yaml holds the firewall rules.');
      return;
    }
    const fileName = vscode.workspace.asRelativePath(target.uri);
    const document = target.exists ? await vscode.workspace.openTextDocument(target.uri) : undefined;
    const text = document?.getText() ?? '';
    const proposal = core.proposeRules(text, approved, { wildcards });
    this.logProposal(proposal);
    if (proposal.added.length === 0) {
      const why = proposal.skipped.length ? ` ${proposal.skipped.length} request(s) were skipped: see the log.` : '';
      const show = 'Show Log';
      const choice = await vscode.window.showInformationMessage(`Nothing to add to ${fileName}.${why}`, ...(why ? [show] : []));
      if (choice === show) this.deps.log.show();
      return;
    }

    const right = this.proposals.show(target.uri, proposal.text);
    const left = document ? target.uri : this.proposals.show(target.uri, '');
    try {
      await vscode.commands.executeCommand('vscode.diff', left, right, `${fileName} ↔ rules proposed for ${agent}`, { preview: true });
      const apply = 'Apply';
      const n = proposal.skipped.length;
      const skipped = n ? ` ${n} approved request${n === 1 ? ' was' : 's were'} skipped: see the log.` : '';
      const choice = await vscode.window.showInformationMessage(`${core.applyPrompt(proposal.added.length, fileName)}${skipped}`, apply, 'Discard');
      if (choice === apply) await this.apply(target, { text, proposal }, approved, wildcards, fileName);
    } finally {
      await closeDiffsOf(right);
      this.proposals.forget(right);
      if (left.scheme === PROPOSAL_SCHEME) this.proposals.forget(left);
    }
  }

  private logProposal(proposal: Proposal): void {
    for (const line of proposal.added) this.deps.log.info(`learn: proposed: ${line}`);
    for (const s of proposal.skipped) this.deps.log.info(`learn: skipped ${s.what}: ${s.reason}`);
  }

  /** Writes the proposal as minimal edits (proposed again if the file changed meanwhile) and saves. */
  private async apply(
    target: { uri: vscode.Uri; exists: boolean },
    shown: { text: string; proposal: Proposal },
    approved: readonly ObservedRequest[],
    wildcards: readonly string[],
    fileName: string,
  ): Promise<void> {
    try {
      const document = target.exists ? await vscode.workspace.openTextDocument(target.uri) : undefined;
      const text = document?.getText() ?? '';
      let final = shown.proposal;
      if (text !== shown.text) {
        this.deps.log.info(`learn: ${fileName} changed since the proposal was shown; proposing again on its current text`);
        final = editorCore().proposeRules(text, approved, { wildcards });
        this.logProposal(final);
      }
      const edit = new vscode.WorkspaceEdit();
      if (document) {
        for (const e of final.edits) {
          edit.replace(document.uri, new vscode.Range(document.positionAt(e.offset), document.positionAt(e.offset + e.length)), e.text);
        }
      } else {
        edit.createFile(target.uri, { ignoreIfExists: true });
        edit.insert(target.uri, new vscode.Position(0, 0), final.text);
      }
      if (!(await vscode.workspace.applyEdit(edit))) throw new Error(`VS Code did not apply the edit to ${fileName}`);
      const saved = await (document ?? (await vscode.workspace.openTextDocument(target.uri))).save();
      for (const line of final.added) this.deps.log.info(`learn: applied: ${line}`);
      if (saved) void vscode.window.showInformationMessage(`Added ${final.added.length} rule${final.added.length === 1 ? '' : 's'} to ${fileName}.`);
      else void vscode.window.showWarningMessage(`${fileName} was edited but not saved: save it to apply the rules.`);
    } catch (e) {
      this.deps.log.error(`learn: applying the proposal to ${fileName}: ${errorText(e)}`);
      void vscode.window.showErrorMessage(`Could not apply the proposed rules: ${errorText(e)}`);
    }
  }

  dispose(): void {
    this.recording?.dispose();
    this.recording = undefined;
    this.status.dispose();
    this.proposals.dispose();
  }
}

export function registerLearnMode(context: vscode.ExtensionContext, deps: { feed: EgressFeed; agents: AgentDirectory; log: vscode.LogOutputChannel }): void {
  const learn = new LearnMode(deps);
  void vscode.commands.executeCommand('setContext', 'clawker.learning', false);
  context.subscriptions.push(
    learn,
    vscode.workspace.registerTextDocumentContentProvider(PROPOSAL_SCHEME, learn.proposals),
    vscode.commands.registerCommand('clawker.learn.start', () => learn.start()),
    vscode.commands.registerCommand('clawker.learn.stop', () => learn.stop()),
  );
}
