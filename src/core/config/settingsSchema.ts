/**
 * The global `settings.yaml` (`~/.config/clawker/settings.yaml`): clawker's keys, of which the firewall
 * toggle and the Docker socket are implemented, plus this extension's own upstream resolvers.
 */
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { ignored, unsupported } from './compat';

export const DEFAULT_UPSTREAM_DNS = ['1.1.1.2', '1.0.0.2'] as const;

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
      })
      .prefault({})
      .describe('The egress firewall.'),
    docker: z
      .looseObject({
        socket: z.string().default('/var/run/docker.sock').describe('Path of the Docker engine socket on this host. Default `/var/run/docker.sock`.'),
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
