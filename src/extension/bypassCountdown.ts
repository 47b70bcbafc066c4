/** What the bypass status bar shows, from the control plane's deadlines. Pure. */
import type { AgentStatus } from '../core/stack/controlPlaneApi';

/** `mm:ss` (or `h:mm:ss` past an hour) of the seconds left, never negative. */
export function formatCountdown(secondsLeft: number): string {
  const s = Math.max(0, Math.ceil(secondsLeft));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${String(mm).padStart(2, '0')}:${ss}`;
}

/** The open bypass windows at `now`: agent and deadline (ms). */
export function openBypasses(agents: readonly AgentStatus[], now: number): { agent: string; container: string; until: number }[] {
  return agents
    .filter((a) => a.state === 'bypassed' && a.bypassUntil !== undefined)
    .map((a) => ({ agent: a.agent, container: a.container, until: Date.parse(a.bypassUntil!) }))
    .filter((b) => Number.isFinite(b.until) && b.until > now);
}
