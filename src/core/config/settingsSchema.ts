/**
 * The global `settings.yaml` (`~/.config/clawker/settings.yaml`): the firewall toggle from the spec,
 * plus this extension's own settings (upstream resolvers, Docker host).
 */
import { isIPv4 } from 'node:net';
import { z } from 'zod';

export const DEFAULT_UPSTREAM_DNS = ['1.1.1.2', '1.0.0.2'] as const;

export const settingsSchema = z
  .looseObject({
    firewall: z
      .looseObject({
        enable: z
          .boolean()
          .default(true)
          .describe(
            'Turn the egress firewall on (default) or off for every agent. **Off removes all outbound restrictions**: agents can reach any endpoint.',
          ),
        upstream_dns: z
          .array(z.string().refine((s) => isIPv4(s), { message: 'must be an IPv4 address' }))
          .min(1)
          .default([...DEFAULT_UPSTREAM_DNS])
          .describe('IPv4 resolvers CoreDNS forwards allowed names to. Default: Cloudflare\'s malware-blocking `1.1.1.2`, `1.0.0.2`.'),
      })
      .prefault({})
      .describe('The egress firewall.'),
    docker: z
      .looseObject({
        host: z
          .string()
          .optional()
          .describe('Docker engine address (`unix:///var/run/docker.sock`, `tcp://…`). Default: `DOCKER_HOST`, else the local socket.'),
      })
      .prefault({})
      .describe('How to reach the Docker engine.'),
  })
  .describe('Clawker global settings.');

export type Settings = z.output<typeof settingsSchema>;
