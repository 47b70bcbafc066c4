/**
 * The control plane's status, polled over its socket: often while it runs (the bypass countdown and
 * the agents' firewall states come from here), rarely while it does not.
 */
import * as vscode from 'vscode';
import type { Status } from '../../core/stack/controlPlaneApi';
import { ControlPlaneClient } from '../../platform/controlPlaneClient';
import type { StackStatus } from './contracts';

const WHILE_RUNNING_MS = 2_000;
const WHILE_STOPPED_MS = 5_000;

export class PolledStackStatus implements StackStatus, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Status | undefined>();
  readonly onDidChange = this.changed.event;
  private status: Status | undefined;
  private lastJson = 'undefined';
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private disposed = false;

  constructor(private readonly dataDir: () => string) {}

  get current(): Status | undefined {
    return this.status;
  }

  start(): void {
    void this.refresh();
  }

  refresh(): Promise<void> {
    this.inFlight ??= this.poll().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async poll(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    let next: Status | undefined;
    try {
      next = await new ControlPlaneClient(this.dataDir(), 5_000).status();
    } catch {
      next = undefined;
    }
    const json = JSON.stringify(next);
    if (json !== this.lastJson) {
      this.lastJson = json;
      this.status = next;
      this.changed.fire(next);
    }
    if (!this.disposed) this.timer = setTimeout(() => void this.refresh(), next ? WHILE_RUNNING_MS : WHILE_STOPPED_MS);
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.changed.dispose();
  }
}
