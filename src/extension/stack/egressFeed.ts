/**
 * Follows the control plane's event stream through one long-lived `clawker firewall events --follow
 * --json` while it runs, and starts it again after the stack stops or restarts. Each line is checked
 * against the event schema before anyone sees it.
 */
import * as vscode from 'vscode';
import type { EgressEvent } from '../../core/events/egressEvent';
import { editorCore } from '../lazy';
import type { ClawkerCli, EgressFeed, FollowedCli } from './contracts';

/** Events replayed on (re)connect: enough for the Blocked view to show what happened before. */
const TAIL = 500;
const RETRY_MS = 3_000;

export class ControlPlaneEgressFeed implements EgressFeed, vscode.Disposable {
  private readonly events = new vscode.EventEmitter<EgressEvent>();
  private readonly connection = new vscode.EventEmitter<boolean>();
  readonly onEvent = this.events.event;
  readonly onDidChangeConnection = this.connection.event;
  private isConnected = false;
  private follower: FollowedCli | undefined;
  private retry: NodeJS.Timeout | undefined;
  private disposed = false;
  /** Events already delivered: a reconnect replays the tail, which must not count twice. */
  private readonly seen = new Set<string>();

  constructor(
    private readonly cli: ClawkerCli,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get connected(): boolean {
    return this.isConnected;
  }

  start(): void {
    if (this.follower || this.disposed) return;
    const follower = this.cli.follow(['firewall', 'events', '--follow', '--json', '--ready-line', '--tail', String(TAIL)], (line) => this.receive(line));
    this.follower = follower;
    void follower.exited.then((code) => {
      if (this.follower !== follower) return;
      this.follower = undefined;
      this.setConnected(false);
      this.log.debug(`event stream ended (${code})`);
      if (!this.disposed) this.retry = setTimeout(() => this.start(), RETRY_MS);
    });
  }

  private receive(line: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return this.log.warn('event stream: a line that is not JSON was skipped');
    }
    // The CLI's own line: the stream is open, even while no event comes (an idle stack).
    if ((raw as { ready?: unknown } | null)?.ready === true && Object.keys(raw as object).length === 1) return this.setConnected(true);
    this.deliver(raw);
  }

  private deliver(raw: unknown): void {
    const parsed = editorCore().egressEventSchema.safeParse(raw);
    if (!parsed.success) {
      this.log.warn('event stream: a line that is not an egress event was skipped');
      return;
    }
    const key = JSON.stringify(parsed.data);
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > TAIL * 4) this.seen.delete(this.seen.values().next().value as string);
    this.events.fire(parsed.data);
  }

  private setConnected(value: boolean): void {
    if (value === this.isConnected) return;
    this.isConnected = value;
    this.connection.fire(value);
  }

  /** Reconnect now (the data directory setting changed, or the stack was just started). */
  restart(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    const old = this.follower;
    this.follower = undefined;
    old?.dispose();
    this.setConnected(false);
    this.start();
  }

  dispose(): void {
    this.disposed = true;
    if (this.retry) clearTimeout(this.retry);
    this.follower?.dispose();
    this.follower = undefined;
    this.events.dispose();
    this.connection.dispose();
  }
}
