/**
 * When the host proxy daemon should end by itself: it serves the running agents of one stack, so
 * once none has run for a grace period (or Docker cannot be asked, many times in a row) it exits
 * instead of holding the gateway address for good. `clawker run`/`start` start it again. Pure: the
 * daemon feeds it one observation per poll.
 */

export interface IdlePolicy {
  /** How long with no running agent before exiting (counted from the start, or the last agent seen). */
  readonly graceMs: number;
  /** Consecutive failed Docker listings before exiting. */
  readonly maxErrors: number;
}

export const DEFAULT_IDLE_POLICY: IdlePolicy = { graceMs: 60_000, maxErrors: 10 };
export const DEFAULT_IDLE_POLL_MS = 30_000;

export interface IdleState {
  /** When an agent was last seen running (the daemon's start before any was). */
  readonly lastBusyAt: number;
  readonly errors: number;
}

/** What one poll saw: how many of the stack's agents run, or the listing's error. */
export type IdleObservation = { readonly running: number } | { readonly error: string };

export type IdleStep = { readonly state: IdleState } | { readonly exit: string };

export const idleStart = (now: number): IdleState => ({ lastBusyAt: now, errors: 0 });

export function idleStep(state: IdleState, seen: IdleObservation, now: number, policy: IdlePolicy): IdleStep {
  if ('error' in seen) {
    const errors = state.errors + 1;
    return errors >= policy.maxErrors
      ? { exit: `Docker could not list the agents ${errors} times in a row (last: ${seen.error})` }
      : { state: { ...state, errors } };
  }
  if (seen.running > 0) return { state: { lastBusyAt: now, errors: 0 } };
  const idleMs = now - state.lastBusyAt;
  return idleMs >= policy.graceMs ? { exit: `no agent of the stack has run for ${Math.round(idleMs / 1000)} s` } : { state: { ...state, errors: 0 } };
}
