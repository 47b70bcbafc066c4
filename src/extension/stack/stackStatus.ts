/**
 * The control plane's status, followed through one long-lived `clawker firewall status --watch
 * --json` (a line now and on every change; it asks often while the stack runs, rarely while it does
 * not). The CLI reaches the control plane through the Docker API on whatever engine the user has;
 * the extension host never talks to Docker itself. A crashed watcher is started again.
 */
import * as vscode from 'vscode';
import type { Status } from '../../core/stack/controlPlaneApi';
import type { ClawkerCli, FollowedCli, StackStatus } from './contracts';

const RESTART_MS = 3_000;
/** How long refresh() waits for the answer it asked for. */
const REFRESH_TIMEOUT_MS = 10_000;

export class PolledStackStatus implements StackStatus, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Status | undefined>();
  readonly onDidChange = this.changed.event;
  private status: Status | undefined;
  private lastJson = 'undefined';
  private watcher: FollowedCli | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private waiting: (() => void)[] = [];
  private disposed = false;

  constructor(
    private readonly cli: ClawkerCli,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get current(): Status | undefined {
    return this.status;
  }

  start(): void {
    if (this.watcher || this.disposed) return;
    const watcher = this.cli.follow(['firewall', 'status', '--watch', '--json'], (line) => this.receive(line));
    this.watcher = watcher;
    void watcher.exited.then((code) => {
      if (this.watcher !== watcher) return;
      this.watcher = undefined;
      this.update(undefined);
      this.release();
      this.log.debug(`status watcher exited ${code}`);
      if (!this.disposed) this.restartTimer = setTimeout(() => this.start(), RESTART_MS);
    });
  }

  /** Ask now (after a command changed something); resolves with the answer, or after a timeout. */
  refresh(): Promise<void> {
    if (!this.watcher) this.start();
    return new Promise((resolve) => {
      const timer = setTimeout(done, REFRESH_TIMEOUT_MS);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.waiting.push(done);
      this.watcher?.send('status');
    });
  }

  /** Start over (the data directory setting changed: another stack may be the one to follow). */
  restart(): void {
    const old = this.watcher;
    this.watcher = undefined;
    old?.dispose();
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.start();
  }

  private receive(line: string): void {
    let parsed: { status?: Status | null; error?: string };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      return this.log.warn('status watcher: a line that is not JSON was skipped');
    }
    if (parsed.error) this.log.debug(`status: ${parsed.error}`);
    this.update(parsed.status ?? undefined);
    this.release();
  }

  private update(next: Status | undefined): void {
    const json = JSON.stringify(next);
    if (json === this.lastJson) return;
    this.lastJson = json;
    this.status = next;
    this.changed.fire(next);
  }

  private release(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const done of waiting) done();
  }

  dispose(): void {
    this.disposed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.watcher?.dispose();
    this.watcher = undefined;
    this.release();
    this.changed.dispose();
  }
}
