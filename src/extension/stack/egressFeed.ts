/**
 * Follows the control plane's event stream (`/v1/events?follow=1`) while it runs, and reconnects
 * after it stops or restarts. Each line is checked against the event schema before anyone sees it.
 */
import * as vscode from 'vscode';
import type { EgressEvent } from '../../core/events/egressEvent';
import { ControlPlaneClient } from '../../platform/controlPlaneClient';
import { editorCore } from '../lazy';
import type { EgressFeed } from './contracts';

/** Events replayed on (re)connect: enough for the Blocked view to show what happened before. */
const TAIL = 500;
const RETRY_MS = 3_000;

export class ControlPlaneEgressFeed implements EgressFeed, vscode.Disposable {
  private readonly events = new vscode.EventEmitter<EgressEvent>();
  private readonly connection = new vscode.EventEmitter<boolean>();
  readonly onEvent = this.events.event;
  readonly onDidChangeConnection = this.connection.event;
  private isConnected = false;
  private abort: AbortController | undefined;
  private retry: NodeJS.Timeout | undefined;
  private disposed = false;
  /** Events already delivered: a reconnect replays the tail, which must not count twice. */
  private readonly seen = new Set<string>();

  constructor(
    private readonly dataDir: () => string,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get connected(): boolean {
    return this.isConnected;
  }

  start(): void {
    if (this.abort || this.disposed) return;
    const abort = new AbortController();
    this.abort = abort;
    const client = new ControlPlaneClient(this.dataDir());
    client
      .events({ tail: TAIL, follow: true, signal: abort.signal, onOpen: () => this.setConnected(true) }, (raw) => this.deliver(raw))
      .then(
        () => undefined,
        (e: unknown) => this.log.debug(`event stream: ${e instanceof Error ? e.message : String(e)}`),
      )
      .finally(() => {
        this.abort = undefined;
        this.setConnected(false);
        if (!this.disposed && !abort.signal.aborted) this.retry = setTimeout(() => this.start(), RETRY_MS);
      });
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
    this.abort?.abort();
    this.abort = undefined;
    this.start();
  }

  dispose(): void {
    this.disposed = true;
    if (this.retry) clearTimeout(this.retry);
    this.abort?.abort();
    this.events.dispose();
    this.connection.dispose();
  }
}
