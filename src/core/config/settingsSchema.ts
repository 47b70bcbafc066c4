/**
 * The global `settings.yaml` (`~/.config/clawker/settings.yaml`): clawker's keys, of which the firewall
 * toggle and the Docker engine address are implemented, plus this extension's own upstream resolvers.
 */
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { ignored, renamed, unsupported } from './compat';
import { parseEngineAddress } from '../engine/engineAddress';

export const DEFAULT_UPSTREAM_DNS = ['1.1.1.2', '1.0.0.2'] as const;

/** Query types `firewall.dns.allowed_types` may name (CoreDNS knows more; these are the ones worth a choice). */
export const DNS_QUERY_TYPES = ['A', 'AAAA', 'CNAME', 'HTTPS', 'SVCB', 'TXT', 'MX', 'SRV', 'NS', 'PTR', 'SOA', 'CAA', 'NULL', 'ANY', 'DS', 'DNSKEY', 'SSHFP', 'TLSA', 'NAPTR'] as const;

/**
 * DNS exfiltration defences, on by default (the reasoning: images/coredns/plugin/dnsguard/README.md).
 * A, AAAA, CNAME and HTTPS are what an HTTPS/SSH client asks; 48-octet labels pass UUIDs, 40-hex
 * digests and load-balancer names while encoders fill labels to 63; 128 octets is far above real host
 * names and half of what a tunnel packs into one; 50 queries a second (burst 100) is above a busy
 * build's lookups and bounds a tunnel to a few KB/s.
 */
export const DEFAULT_DNS_GUARD = {
  enable: true,
  allowed_types: ['A', 'AAAA', 'CNAME', 'HTTPS'],
  max_label_length: 48,
  max_name_length: 128,
  query_rate: { per_second: 50, burst: 100 },
} as const;

export const dnsGuardSchema = z
  .looseObject({
    enable: z.boolean().default(DEFAULT_DNS_GUARD.enable).describe('Turn the DNS exfiltration defences on (default) or off. Off leaves the allowlist as the only DNS restriction.'),
    allowed_types: z
      .array(z.enum(DNS_QUERY_TYPES))
      .min(1)
      .nullable()
      .default([...DEFAULT_DNS_GUARD.allowed_types])
      .describe('Query types an agent may ask for names in allowed zones; others are refused. Default A, AAAA, CNAME, HTTPS. `null`: any type.'),
    max_label_length: z
      .int()
      .min(1)
      .max(63)
      .nullable()
      .default(DEFAULT_DNS_GUARD.max_label_length)
      .describe("Longest label (the part between dots) a query name may have, in octets. Default 48. `null`: no cap beyond DNS's 63."),
    max_name_length: z
      .int()
      .min(1)
      .max(253)
      .nullable()
      .default(DEFAULT_DNS_GUARD.max_name_length)
      .describe("Longest query name, in octets, dots included. Default 128. `null`: no cap beyond DNS's 253."),
    query_rate: z
      .strictObject({
        per_second: z.int().min(1).max(1_000_000).describe('Queries a second each agent earns back.'),
        burst: z.int().min(1).max(1_000_000).describe('Queries an agent may send at once.'),
      })
      .nullable()
      .default({ ...DEFAULT_DNS_GUARD.query_rate })
      .describe('Queries each agent (client address) may send, as a token bucket. Default 50 a second, burst 100. `null`: no limit.'),
  })
  .prefault({})
  .describe('DNS exfiltration defences beyond the allowlist: refused queries are answered REFUSED and reported as egress events. (Clawker for VS Code)');

export const settingsSchema = z
  .looseObject({
    firewall: z
      .looseObject({
        enable: z
          .boolean()
          .default(true)
          .describe('Turn the egress firewall on (default) or off for every agent. **Off removes all outbound restrictions**: agents can reach any endpoint.'),
        upstream_dns: z
          .array(z.string().refine((s) => isIPv4(s), { message: 'must be an IPv4 address' }))
          .min(1)
          .default([...DEFAULT_UPSTREAM_DNS])
          .describe("IPv4 resolvers CoreDNS forwards allowed names to. Default: Cloudflare's malware-blocking `1.1.1.2`, `1.0.0.2`. (Clawker for VS Code)"),
        dns: dnsGuardSchema,
      })
      .prefault({})
      .describe('The egress firewall.'),
    docker: z
      .looseObject({
        host: z
          .string()
          .superRefine((value, ctx) => {
            const parsed = parseEngineAddress(value);
            if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
          })
          .optional()
          .describe(
            'Address of the Docker engine, scheme included: `unix:///run/user/1000/docker.sock`, `tcp://10.0.0.5:2376` (TLS from `DOCKER_CERT_PATH`), `ssh://user@host`. ' +
              '`DOCKER_HOST` takes precedence; when neither is set, the active docker context is used, then the platform default.',
          ),
        socket: renamed(z.string(), "write 'host: unix://PATH' instead", 'Path of the Docker engine socket (older name; `host: unix://PATH` replaces it).'),
      })
      .prefault({})
      .describe('How to reach the Docker engine.'),
    logging: unsupported('Log files and OpenTelemetry log export.'),
    monitoring: unsupported('Ports and options of the monitoring stack (OpenTelemetry collector, OpenSearch, Prometheus).'),
    host_proxy: unsupported('Ports and timings of the host proxy.'),
    control_plane: unsupported('Ports of the clawker control plane.'),
    default_image: ignored('the base image is built by clawker.'),
  })
  .describe('Clawker global settings.');

export type Settings = z.output<typeof settingsSchema>;
export type DnsGuardSettings = Settings['firewall']['dns'];
