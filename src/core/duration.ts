/**
 * Durations as clawker writes them (Go's time.ParseDuration syntax without sub-second units):
 * `30s`, `5m`, `1h30m`, `2h`. A bare number is refused: `5` could mean seconds or minutes.
 */
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600 };

export function parseDuration(text: string): { seconds: number } | { error: string } {
  const trimmed = text.trim();
  if (!/^(\d+(\.\d+)?[hms])+$/.test(trimmed)) {
    return { error: `${JSON.stringify(text)} is not a duration: write it like 30s, 5m, 1h or 1h30m` };
  }
  let seconds = 0;
  for (const m of trimmed.matchAll(/(\d+(?:\.\d+)?)([hms])/g)) seconds += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  if (seconds <= 0) return { error: `${JSON.stringify(text)}: a bypass must last longer than 0 s` };
  return { seconds };
}

export function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', rest || (!h && !m) ? `${rest}s` : ''].join('');
}
