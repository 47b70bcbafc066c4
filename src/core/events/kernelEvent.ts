/**
 * Kernel verdicts: one JSON object a line as `bpfman events` prints it (`EventJSON` in
 * images/controlplane/bpfman/datapath/layout.go, the names of enum verdict/reason/hook in
 * bpf/include/clawker_datapath.h), made into events. The kernel knows cgroups, boot-clock
 * nanoseconds and domain keys; the context turns them into agents, wall time and rule destinations.
 */
import { type AgentRef, agentFields, checkedEvent, type EgressEvent, parseEndpoint, VERDICTS, type EgressVerdict } from './eventSchema';

export interface KernelEventContext {
  /** Wall time of a CLOCK_BOOTTIME instant in nanoseconds (the kernel's clock for events). */
  wallTimeOf(bootNs: number): Date;
  agentOf(cgroupId: number): AgentRef | undefined;
  /** The rule destination a domain key (`0x` + 16 hex digits, as bpfman prints it) stands for. */
  domainOf(domainKeyHex: string): string | undefined;
}

/** bpfman prints IPPROTO_* it has no name for as the number. */
const L4_NAMES: Record<string, string> = { tcp: 'tcp', udp: 'udp', '1': 'icmp', '58': 'icmpv6', '255': 'raw' };
const SOCK_TYPES = new Set(['stream', 'dgram', 'raw']);
const HOOKS = new Set(['connect4', 'connect6', 'sendmsg4', 'sendmsg6', 'sock_create']);

/** A uint64 as JSON gives it: a number, or digits when the reader kept big integers exact. */
function unsigned(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : undefined;
  if (typeof v === 'bigint') return v >= 0n ? Number(v) : undefined;
  if (typeof v === 'string' && /^\d{1,20}$/.test(v)) return Number(v);
  return undefined;
}

const l4Of = (v: unknown): string | undefined =>
  typeof v !== 'string' ? undefined : (L4_NAMES[v] ?? (/^\d{1,3}$/.test(v) ? `ipproto-${v}` : undefined));

/** bpfman writes the enum number when it has no name (REASON_NONE is 0): no reason then. */
const reasonOf = (v: unknown): string | undefined => (typeof v === 'string' && /^[a-z][a-z0-9-]*$/.test(v) ? v : undefined);

/** One `bpfman events` object → an event; anything else (or a verdict we do not know) → undefined. */
export function fromKernelEvent(raw: unknown, ctx: KernelEventContext): EgressEvent | undefined {
  try {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
    const r = raw as Record<string, unknown>;
    if (!VERDICTS.includes(r.verdict as EgressVerdict)) return undefined;
    const bootNs = unsigned(r.time);
    const cgroupId = unsigned(r.cgroupId);
    if (bootNs === undefined || cgroupId === undefined) return undefined;
    const time = ctx.wallTimeOf(bootNs);
    if (!(time instanceof Date) || Number.isNaN(time.getTime())) return undefined;
    const src = parseEndpoint(r.src);
    const dst = parseEndpoint(r.dst);
    const redirect = parseEndpoint(r.redirect);
    const domainKey = typeof r.domainKey === 'string' && /^0x[0-9a-f]{16}$/i.test(r.domainKey) ? r.domainKey.toLowerCase() : undefined;
    const domain = domainKey ? ctx.domainOf(domainKey) : undefined;
    const l4 = l4Of(r.l4);
    const reason = reasonOf(r.reason);
    const pid = unsigned(r.pid);
    const uid = unsigned(r.uid);
    return checkedEvent({
      time: time.toISOString(),
      source: 'kernel',
      verdict: r.verdict as EgressVerdict,
      ...agentFields(ctx.agentOf(cgroupId)),
      cgroupId,
      ...(domain ? { domain } : {}),
      ...(src ? { src } : {}),
      ...(dst ? { dst } : {}),
      ...(redirect ? { redirect } : {}),
      ...(l4 ? { l4 } : {}),
      ...(typeof r.sockType === 'string' && SOCK_TYPES.has(r.sockType) ? { sockType: r.sockType } : {}),
      ...(typeof r.hook === 'string' && HOOKS.has(r.hook) ? { hook: r.hook } : {}),
      ...(reason ? { reason } : {}),
      ...(pid !== undefined ? { pid } : {}),
      ...(uid !== undefined ? { uid } : {}),
    });
  } catch {
    return undefined; // a throwing context must not take the stream down
  }
}

