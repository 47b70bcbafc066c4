import { DEFAULT_PORTS } from './protocol';
import { type Checked, error } from './finding';

/** An inclusive port range; a single port has `lo === hi`. */
export interface PortRange {
  readonly lo: number;
  readonly hi: number;
}

export const formatPortRange = (p: PortRange): string => (p.lo === p.hi ? `${p.lo}` : `${p.lo}-${p.hi}`);

const PORT = /^\d{1,5}$/;

function portNumber(text: string): number | undefined {
  if (!PORT.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** Parses `N` or `LO-HI` (1–65535, LO ≤ HI); empty means the protocol's default port. */
export function checkPort(raw: string | number | undefined, proto: string): Checked<PortRange> {
  const text = raw === undefined ? '' : String(raw).trim();
  if (text === '') {
    const fallback = DEFAULT_PORTS[proto];
    if (fallback === undefined) {
      return {
        findings: [error('port-required', `'${proto}' has no default port: set 'port' to a port ("5432") or a range ("9000-9100").`)],
      };
    }
    return { value: { lo: fallback, hi: fallback }, findings: [] };
  }
  const dash = text.indexOf('-');
  if (dash < 0) {
    const n = portNumber(text);
    if (n === undefined) return { findings: [error('port-invalid', `port '${text}' is not a port number from 1 to 65535 (a range is written "LO-HI").`)] };
    return { value: { lo: n, hi: n }, findings: [] };
  }
  const lo = portNumber(text.slice(0, dash).trim());
  const hi = portNumber(text.slice(dash + 1).trim());
  if (lo === undefined || hi === undefined) {
    return { findings: [error('port-invalid', `port range '${text}' must be "LO-HI" with both ends from 1 to 65535.`)] };
  }
  if (lo > hi) {
    return {
      findings: [error('port-invalid', `port range '${text}' runs backwards: write it "${hi}-${lo}".`, { title: `Write the range as ${hi}-${lo}`, value: `${hi}-${lo}` })],
    };
  }
  return { value: { lo, hi }, findings: [] };
}
