/**
 * The control plane's settings, from its environment (set by whoever starts its container: the CLI's
 * `firewall up`, or a test). Checked once at start: a wrong value stops the daemon with the variable's
 * name, before anything is touched.
 */
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { HOST_PROXY_PORT } from '../core/agents/agentContract';
import { DEFAULT_UPSTREAM_DNS, type DnsGuardSettings, dnsGuardSchema } from '../core/config/settingsSchema';
import { CONTROL_PLANE_API_SOCKET } from '../core/stack/controlPlaneApi';
import { DEFAULT_STACK_PREFIX, stackNames, type StackNames } from '../core/stack/stackNames';
import { DEFAULT_STACK_IMAGES, PIN_DIR } from '../core/stack/containerSpecs';
import { CONTROL_PLANE_DATA_DIR, stackLayout } from '../core/stack/stackLayout';

const DEFAULT_IMAGES = DEFAULT_STACK_IMAGES;

const absolute = z.string().refine((p) => isAbsolute(p), 'must be an absolute path');
const ipv4List = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
  .pipe(z.array(z.ipv4()).min(1));

const envSchema = z.object({
  /** Its own data directory: in its container a volume (the host's data dir is never mounted). */
  CLAWKER_DATA_DIR: absolute.default(CONTROL_PLANE_DATA_DIR),
  CLAWKER_STACK: z.string().default(DEFAULT_STACK_PREFIX),
  CLAWKER_PIN_DIR: absolute.default(PIN_DIR),
  CLAWKER_BPFMAN: absolute.default('/opt/clawker/bpfman'),
  CLAWKER_ENVOY_IMAGE: z.string().min(1).default(DEFAULT_IMAGES.envoy),
  CLAWKER_COREDNS_IMAGE: z.string().min(1).default(DEFAULT_IMAGES.coredns),
  CLAWKER_CONTROLPLANE_IMAGE: z.string().min(1).default(DEFAULT_IMAGES.controlplane),
  CLAWKER_UPSTREAM_DNS: ipv4List.default([...DEFAULT_UPSTREAM_DNS]),
  /** settings.yaml `firewall.dns` as JSON (the CLI passes it); unset: the defaults. */
  CLAWKER_DNS_GUARD: z
    .string()
    .optional()
    .transform((text, ctx) => {
      try {
        return dnsGuardSchema.parse(text === undefined ? {} : JSON.parse(text));
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `not a firewall.dns setting: ${(e as Error).message}` });
        return z.NEVER;
      }
    }),
  CLAWKER_CGROUP2_ROOT: absolute.optional(),
  CLAWKER_DOCKER_SOCKET: absolute.default('/var/run/docker.sock'),
  /** The API's Unix socket (in the container: a tmpfs of its own; tests: a temporary directory). */
  CLAWKER_API_SOCKET: absolute.default(CONTROL_PLANE_API_SOCKET),
  /** A component container found stopped this long is started again. */
  CLAWKER_HEAL_AFTER_MS: z.coerce.number().int().min(0).default(3000),
  /** After the last agent exits, wait this long before draining the stack. */
  CLAWKER_DRAIN_AFTER_MS: z.coerce.number().int().min(0).default(10_000),
  CLAWKER_PROBE_INTERVAL_MS: z.coerce.number().int().min(100).default(1000),
  /** The host proxy's TCP port at host.docker.internal, the one port of the host agents may reach; 0: none. */
  CLAWKER_HOST_PROXY_PORT: z.coerce.number().int().min(0).max(65535).default(HOST_PROXY_PORT),
  /** Where host.docker.internal is read (the container's own /etc/hosts; tests: a file of theirs). */
  CLAWKER_HOSTS_FILE: absolute.default('/etc/hosts'),
});

export interface ControlPlaneConfig {
  readonly dataDir: string;
  readonly names: StackNames;
  readonly pinDir: string;
  readonly bpfman: string;
  readonly images: { readonly envoy: string; readonly coredns: string; readonly controlplane: string };
  readonly upstreams: readonly string[];
  /** settings.yaml `firewall.dns`: the DNS exfiltration defences rendered into the Corefile. */
  readonly dns: DnsGuardSettings;
  readonly cgroup2Root?: string;
  readonly dockerSocket: string;
  readonly healAfterMs: number;
  readonly drainAfterMs: number;
  readonly probeIntervalMs: number;
  /** The host proxy's TCP port at the host-gateway, which the datapath lets agents reach (0: none). */
  readonly hostProxyPort: number;
  /** The hosts file host.docker.internal is read from. */
  readonly hostsFile: string;
  readonly socketPath: string;
  /** Rendered configuration: envoy/, coredns/, bpf/ (envoy/ and coredns/ are the volumes Envoy and CoreDNS mount). */
  readonly stackDir: string;
  readonly caDir: string;
  readonly stateFile: string;
  readonly eventsFile: string;
}

export function readConfig(env: NodeJS.ProcessEnv): ControlPlaneConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`control plane environment: ${lines.join('; ')}`);
  }
  const e = parsed.data;
  const dataDir = e.CLAWKER_DATA_DIR;
  return {
    dataDir,
    names: stackNames(e.CLAWKER_STACK),
    pinDir: e.CLAWKER_PIN_DIR,
    bpfman: e.CLAWKER_BPFMAN,
    images: { envoy: e.CLAWKER_ENVOY_IMAGE, coredns: e.CLAWKER_COREDNS_IMAGE, controlplane: e.CLAWKER_CONTROLPLANE_IMAGE },
    upstreams: e.CLAWKER_UPSTREAM_DNS,
    dns: e.CLAWKER_DNS_GUARD,
    ...(e.CLAWKER_CGROUP2_ROOT ? { cgroup2Root: e.CLAWKER_CGROUP2_ROOT } : {}),
    dockerSocket: e.CLAWKER_DOCKER_SOCKET,
    healAfterMs: e.CLAWKER_HEAL_AFTER_MS,
    drainAfterMs: e.CLAWKER_DRAIN_AFTER_MS,
    probeIntervalMs: e.CLAWKER_PROBE_INTERVAL_MS,
    hostProxyPort: e.CLAWKER_HOST_PROXY_PORT,
    hostsFile: e.CLAWKER_HOSTS_FILE,
    socketPath: e.CLAWKER_API_SOCKET,
    ...(({ stackDir, caDir, stateFile, eventsFile }) => ({ stackDir, caDir, stateFile, eventsFile }))(stackLayout(dataDir)),
  };
}
