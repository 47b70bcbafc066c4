/**
 * The blocked requests the editor shows: every fixable block of the event stream, kept by the
 * core's BlockedLog, narrowed to the agents of this workspace. Which agent an event came from is
 * asked of the agent directory each time, so an agent listed after its first block still shows.
 */
import * as vscode from 'vscode';
import type { BlockedEntry, BlockedLog } from '../../core/editor/blockedRequests';
import type { EgressEvent } from '../../core/events/egressEvent';
import type { AgentDirectory } from '../stack/contracts';
import { editorCore } from '../lazy';

/** Views and diagnostics redraw at most this often while events pour in. */
const CHANGE_DELAY_MS = 200;
/** A new block whose agent the directory does not know yet is announced if it learns it this soon. */
const PENDING_MS = 60_000;
const AGENT_REFRESH_MS = 5_000;

export class BlockedModel implements vscode.Disposable {
  private log: BlockedLog | undefined;
  /** The last event of each entry: what the agent directory is asked about. */
  private readonly lastEvent = new Map<string, EgressEvent>();
  private readonly pendingNew = new Map<string, number>();
  private readonly changed = new vscode.EventEmitter<void>();
  /** Entries changed (debounced). */
  readonly onDidChange = this.changed.event;
  private readonly created = new vscode.EventEmitter<BlockedEntry>();
  /** An agent of this workspace was blocked from a domain for the first time. */
  readonly onDidCreate = this.created.event;
  private timer: NodeJS.Timeout | undefined;
  private lastAgentRefresh = 0;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly agents: AgentDirectory) {
    this.subscription = agents.onDidChange(() => {
      this.announcePending();
      this.changed.fire();
    });
  }

  record(event: EgressEvent): void {
    if (event.verdict !== 'denied') return; // most of the stream: not worth a look
    this.log ??= new (editorCore().BlockedLog)();
    const entry = this.log.record(event);
    if (!entry) return;
    this.lastEvent.set(entry.key, event);
    if (this.lastEvent.size > 2 * this.log.size + 100) {
      for (const key of this.lastEvent.keys()) if (!this.log.get(key)) this.lastEvent.delete(key);
    }
    if (entry.count === 1) {
      const mine = this.belongs(entry.key);
      if (mine === true) this.created.fire(entry);
      else if (mine === undefined) this.awaitAgent(entry.key);
    }
    this.changeSoon();
  }

  /** This workspace's entries, newest first. */
  entries(): BlockedEntry[] {
    return (this.log?.list() ?? []).filter((e) => this.belongs(e.key) === true);
  }

  get(key: string): BlockedEntry | undefined {
    return this.log?.get(key);
  }

  forget(key: string): void {
    if (this.log?.forget(key)) {
      this.lastEvent.delete(key);
      this.changed.fire();
    }
  }

  clear(): void {
    this.log?.clear();
    this.lastEvent.clear();
    this.pendingNew.clear();
    this.changed.fire();
  }

  /** Forgets this workspace's entries `keep` rejects (other projects' are judged by their own files). */
  prune(keep: (entry: BlockedEntry) => boolean): void {
    const dropped = this.log?.prune((e) => this.belongs(e.key) !== true || keep(e)) ?? [];
    for (const e of dropped) this.lastEvent.delete(e.key);
    if (dropped.length > 0) this.changed.fire();
  }

  /** True: an agent of an open folder; false: another project's; undefined: not listed (yet). */
  private belongs(key: string): boolean | undefined {
    const event = this.lastEvent.get(key);
    if (!event) return false;
    const agent = this.agents.forEvent(event);
    if (!agent) return undefined;
    return this.agents.ofWorkspace().some((a) => a.id === agent.id);
  }

  private awaitAgent(key: string): void {
    this.pendingNew.set(key, Date.now());
    if (Date.now() - this.lastAgentRefresh < AGENT_REFRESH_MS) return;
    this.lastAgentRefresh = Date.now();
    void this.agents.refresh();
  }

  private announcePending(): void {
    const now = Date.now();
    for (const [key, since] of this.pendingNew) {
      const mine = this.belongs(key);
      if (mine !== undefined || now - since > PENDING_MS) this.pendingNew.delete(key);
      const entry = mine === true ? this.log?.get(key) : undefined;
      if (entry) this.created.fire(entry);
    }
  }

  private changeSoon(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.changed.fire();
    }, CHANGE_DELAY_MS);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.subscription.dispose();
    this.changed.dispose();
    this.created.dispose();
  }
}
