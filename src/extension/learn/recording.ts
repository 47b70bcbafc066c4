/**
 * One learning session: the denials of one agent's egress events, from the moment it started.
 * The feed replays its recent tail when it (re)connects, so older events and repeats are dropped.
 */
import type * as vscode from 'vscode';
import type { AgentSummary } from '../../core/agents/lifecycle';
import type { EgressEvent } from '../../core/events/eventSchema';
import type { AgentDirectory, EgressFeed } from '../stack/contracts';

/** Events kept for counting; past this only events of a request not seen yet are kept, so none is lost. */
const MAX_EVENTS = 20_000;

export class Recording implements vscode.Disposable {
  private readonly kept: EgressEvent[] = [];
  private readonly seenEvents = new Set<string>();
  private readonly requests = new Set<string>();
  private readonly subscription: vscode.Disposable;

  constructor(
    readonly agent: AgentSummary,
    feed: Pick<EgressFeed, 'onEvent'>,
    agents: Pick<AgentDirectory, 'forEvent'>,
    /** The blocked request an event stands for (observedKey of the core), or undefined. */
    keyOf: (e: EgressEvent) => string | undefined,
    /** Called with the number of distinct blocked requests whenever it grows. */
    onBlocked: (distinct: number) => void,
    readonly startedAt = Date.now(),
  ) {
    this.subscription = feed.onEvent((e) => {
      if (e.verdict !== 'denied' || Date.parse(e.time) < this.startedAt) return;
      if (agents.forEvent(e)?.id !== agent.id) return;
      const key = keyOf(e);
      if (key === undefined) return;
      const identity = JSON.stringify(e);
      if (this.seenEvents.has(identity)) return; // replayed after a reconnect
      const isNew = !this.requests.has(key);
      if (this.kept.length < MAX_EVENTS || isNew) {
        this.seenEvents.add(identity);
        this.kept.push(e);
      }
      if (isNew) {
        this.requests.add(key);
        onBlocked(this.requests.size);
      }
    });
  }

  get events(): readonly EgressEvent[] {
    return this.kept;
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
