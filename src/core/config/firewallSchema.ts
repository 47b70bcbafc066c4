/**
 * The `security.firewall` section of `.clawker.yaml`: the zod schema is the single source of truth for
 * its shape, its defaults and the documentation shown on hover. Semantic checks that need more than a
 * type (ports, paths, destinations, duplicates) live in `src/core/firewall/ruleValidation.ts`.
 *
 * Unknown keys anywhere in this section are errors, not warnings: a misspelt `path_rules` would
 * otherwise silently turn a path-restricted rule into an allow-all rule.
 */
import { z } from 'zod';
import { ignored, unsupported } from './compat';

export const ACTIONS = ['allow', 'deny'] as const;
export const KNOWN_PROTOCOLS = ['https', 'http', 'tcp', 'ssh', 'ws', 'wss', 'udp'] as const;
export const COMMON_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE'] as const;

// clawker reads actions case-insensitively (`Allow` is `allow`).
export const action = z.preprocess((v) => (typeof v === 'string' ? v.toLowerCase() : v), z.enum(ACTIONS));

export const pathRuleSchema = z
  .strictObject({
    path: z
      .string()
      .describe(
        'URL path to match. A literal is a **prefix** (`/v1` matches `/v1/chat`). Prefix it with `~` to match an ' +
          '[RE2](https://github.com/google/re2/wiki/Syntax) regular expression against the **whole** path ' +
          '(`~/repos/(myorg|other)/?`). A path must start with `/` (a regex with `/` or `^/`).',
      )
      .meta({ examples: ['/', '/v1/', '~/repos/myorg(/.*)?'] }),
    action: action.describe('`allow` or `deny` for requests matching this path (and `methods`, when set).'),
    methods: z
      .array(z.string().meta({ examples: [...COMMON_METHODS] }))
      .optional()
      .describe(
        'HTTP methods this rule applies to, e.g. `[GET, HEAD]`. Empty or absent = all methods. A match condition, ' +
          'not a verdict: other methods fall through to later path rules or `path_default`. HTTP-family protocols only.',
      ),
  })
  .describe('A path rule: requests whose path (and method) match get `action`. The longest `path` string wins; ties go to the first listed.');

export const firewallRuleSchema = z
  .strictObject({
    dst: z
      .string()
      .describe(
        'Destination: a domain name or an IPv4 address. A leading dot (`.datadoghq.com`) is a wildcard that matches ' +
          'the apex domain and all subdomains. Native IPv6 destinations are denied by the firewall.',
      ),
    proto: z
      .string()
      .default('https')
      .describe(
        'Protocol: `https` (default), `http`, `tcp`, `ssh`, `ws`, `wss`, `udp`, or any other name for TCP pass-through. ' +
          'The legacy value `tls` means `https`.',
      )
      .meta({ examples: [...KNOWN_PROTOCOLS] }),
    port: z
      .union([z.string(), z.int()])
      .optional()
      .describe(
        'Destination port: a single port (`"443"`) or an inclusive range (`"9000-9100"`), 1–65535. Empty means the ' +
          'protocol default: 443 for `https`/`wss`, 80 for `http`/`ws`, 22 for `ssh`.',
      ),
    action: action.default('allow').describe('`allow` or `deny` (default `allow`).'),
    path_rules: z
      .array(pathRuleSchema)
      .optional()
      .describe('Path rules for `https`, `http`, `ws` and `wss` (ignored with a warning on other protocols).'),
    path_default: action
      .default('deny')
      .describe('What happens to a request that matches no `path_rules` entry (default `deny`). Only used with `path_rules`.'),
    insecure_skip_tls_verify: unsupported(
      'Accept an upstream server whose certificate does not verify. Not supported: upstream certificates are always verified.',
      z.boolean(),
    ),
  })
  .describe('A firewall rule: which destination, protocol and port an agent may reach, optionally per path and method.');

export const firewallSchema = z
  .strictObject({
    add_domains: z
      .array(z.string())
      .default([])
      .describe(
        'Domains to allow over HTTPS (port 443), all paths. Shorthand for an `https` allow rule each. ' +
          'A leading dot (`.example.com`) allows the domain and all its subdomains.',
      ),
    rules: z.array(firewallRuleSchema).default([]).describe('Full firewall rules, for other protocols, ports, paths and methods.'),
    enable: ignored('the firewall is switched on and off by `firewall.enable` in settings.yaml.'),
    ip_range_sources: ignored('allow domains with `add_domains` or `rules`.'),
    remove_domains: ignored('built-in domains cannot be removed; list only what to add.'),
    override_domains: ignored('list the domains to allow in `add_domains`.'),
  })
  .describe(
    'Project egress firewall rules. They add to the built-in rules Claude Code needs; they never remove them. ' +
      'Deny by default: anything not allowed here is blocked.',
  );

export type FirewallRuleInput = z.input<typeof firewallRuleSchema>;
export type FirewallRule = z.output<typeof firewallRuleSchema>;
export type PathRule = z.output<typeof pathRuleSchema>;
export type FirewallConfig = z.output<typeof firewallSchema>;
