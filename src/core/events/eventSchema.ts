/**
 * One egress decision, as the event stream carries it and `egress.jsonl` stores it (one JSON object
 * a line): kernel verdicts, CoreDNS refusals, proxy decisions and the control plane's own notes
 * (a bypass window opening or closing). The zod schema is the single source of truth for the
 * shape; the converters in this folder build events from each component's output.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';

export const EVENT_SOURCES = ['kernel', 'dns', 'proxy', 'controlplane'] as const;
export type EgressSource = (typeof EVENT_SOURCES)[number];

/** The kernel's four verdicts (enum verdict in bpf/include/clawker_datapath.h); DNS and proxy use allowed/denied. */
export const VERDICTS = ['allowed', 'denied', 'bypassed', 'redirected'] as const;
export type EgressVerdict = (typeof VERDICTS)[number];

/** A short machine word: `catch-all`, `connect4`, `no-rule`, `tcp`. */
const word = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'a lower-case machine word');

export const endpointSchema = z.strictObject({
  ip: z.union([z.ipv4(), z.ipv6()]).describe('IPv4 written plainly (never IPv4-mapped), or IPv6.'),
  port: z.int().min(0).max(65535),
});
export type Endpoint = z.infer<typeof endpointSchema>;

export const egressEventSchema = z.object({
  time: z.iso.datetime({ offset: true }).describe('When the decision was taken, ISO 8601.'),
  source: z.enum(EVENT_SOURCES).describe('Who decided: the kernel hooks, CoreDNS, Envoy, or the control plane.'),
  verdict: z.enum(VERDICTS),
  agent: z.string().min(1).optional().describe('The agent the traffic came from, when known.'),
  container: z.string().min(1).optional().describe("The agent's container id."),
  cgroupId: z.int().nonnegative().optional().describe('The enrolled cgroup the kernel decided for.'),
  domain: z
    .string()
    .min(1)
    .optional()
    .describe('The name involved: the rule destination the kernel routed by (`.example.com`), the refused query name, or the server name asked of the proxy.'),
  src: endpointSchema.optional().describe("The agent's side of the connection."),
  dst: endpointSchema.optional().describe('The destination the application asked for (proxy: the upstream it was sent to).'),
  redirect: endpointSchema.optional().describe('Where the kernel sent it instead (verdict redirected).'),
  l4: word.optional().describe('`tcp`, `udp`, `icmp`, `icmpv6`, `raw` or `ipproto-N`.'),
  sockType: word.optional().describe('Socket type for kernel events: `stream`, `dgram`, `raw`.'),
  hook: word.optional().describe('Kernel hook: `connect4`, `connect6`, `sendmsg4`, `sendmsg6`, `sock_create`.'),
  reason: word.optional().describe('Why, as one word: `catch-all`, `peer`, `no-rule`, `refused-path`, ...'),
  pid: z.int().nonnegative().optional(),
  uid: z.int().nonnegative().optional(),
  sni: z.string().min(1).optional().describe('The TLS server name the client asked the proxy for.'),
  query: z
    .strictObject({ name: z.string().min(1), type: z.string().min(1), rcode: z.string().min(1) })
    .optional()
    .describe('DNS: the question (name as asked, fully qualified) and the answer code.'),
  http: z
    .strictObject({
      method: z.string().min(1).optional(),
      authority: z.string().min(1).optional(),
      path: z.string().min(1).optional(),
      status: z.int().min(0).max(999).optional(),
      flags: z.string().min(1).optional().describe("Envoy's response flags (`NR`, `UF`, ...)."),
      details: z.string().min(1).optional().describe("Envoy's response code details (`direct_response`, `via_upstream`)."),
      route: z.string().min(1).optional(),
    })
    .optional()
    .describe('Proxy: the HTTP request and what Envoy answered.'),
  message: z.string().min(1).optional().describe('A sentence for people, for control-plane events.'),
  since: z.iso
    .datetime({ offset: true })
    .optional()
    .describe("Control-plane events for a change that takes a while (an agent's enrolment): when it began; the change took effect between `since` and `time`."),
});
export type EgressEvent = z.infer<typeof egressEventSchema>;

/** The agent a cgroup or an address belongs to. */
export interface AgentRef {
  readonly name: string;
  readonly container?: string;
}

/** `agent`/`container` fields for an optional agent. */
export const agentFields = (agent: AgentRef | undefined): Pick<EgressEvent, 'agent' | 'container'> =>
  agent ? { agent: agent.name, ...(agent.container ? { container: agent.container } : {}) } : {};

/** An address as events show it: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is plain IPv4. */
export function plainAddress(ip: string): string | undefined {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (isIPv4(ip)) return ip;
  if (isIPv6(ip)) return ip.toLowerCase();
  return undefined;
}

/** Parses `1.2.3.4:443`, `[2001:db8::1]:443` or `[::ffff:1.2.3.4]:443`; undefined when it is not one. */
export function parseEndpoint(text: unknown): Endpoint | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const ip = plainAddress(m[1]!);
  const port = Number(m[2]);
  return ip !== undefined && port <= 65535 ? { ip, port } : undefined;
}

/** `1.2.3.4:443`, `[2001:db8::1]:443`. */
export const formatEndpoint = (e: Endpoint): string => (e.ip.includes(':') ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`);

/** The event if it matches the schema, else undefined: converters never emit an event the log would reject. */
export function checkedEvent(candidate: EgressEvent): EgressEvent | undefined {
  const parsed = egressEventSchema.safeParse(candidate);
  return parsed.success ? parsed.data : undefined;
}
