/**
 * How an agent container is created: the one place that decides its name, labels, environment,
 * mounts, network and privileges. Pure: returns the Docker create options (and the warnings the
 * user must see); src/platform/docker/agentContainers.ts hands them to the engine.
 *
 * Firewall on (settings `firewall.enable`, the default): on the stack's network with CoreDNS as the
 * only resolver, under the agents' cgroup parent, where the datapath is attached before the
 * container's first instruction. Firewall off: Docker's default bridge, no cgroup parent,
 * CLAWKER_FIREWALL_ENABLED=false.
 *
 * Privileges, whatever the project says: all capabilities dropped, then only the supervisor's
 * (agentContract AGENTD_CAPABILITIES: SETUID, SETGID, KILL) and the project's `security.cap_add`
 * added back; capabilities that would let the agent get around the firewall or reach the host
 * kernel are refused, not warned about. no-new-privileges, not privileged, Docker's own init off
 * (agentd is PID 1), private PID and IPC namespaces, no host network. The Docker socket only with
 * `security.docker_socket: true`, and then with a warning the CLI prints.
 */
import { HOST_GATEWAY_EXTRA_HOST } from '../engine/hostGateway';
import { AGENTD_CAPABILITIES, ENV_AGENT, ENV_FIREWALL_ENABLED, ENV_HOST_PROXY, ENV_PROJECT, LABEL_SUPERVISOR, SUPERVISOR_AGENTD, SUPERVISOR_STRIPPED_ENV, WORKSPACE_DIR } from './agentContract';
import { agentContainerName } from './agentNames';
import { LABEL_AGENT, LABEL_PROJECT, LABEL_STACK, managedLabels } from '../stack/labels';
import type { StackNames } from '../stack/stackNames';

/** The host folder mounted at WORKSPACE_DIR (absolute), so `ps` and the editor can show it. */
export const LABEL_WORKSPACE = 'dev.clawker.workspace';
/** Whether the agent was created behind the firewall: `enabled` or `disabled`. */
export const LABEL_FIREWALL = 'dev.clawker.firewall';

/** Where the Docker socket is mounted inside, when `security.docker_socket` is true. */
export const CONTAINER_DOCKER_SOCKET = '/var/run/docker.sock';
export const DEFAULT_HOST_DOCKER_SOCKET = '/var/run/docker.sock';

/** The part of `.clawker.yaml` an agent container is made from. */
export interface AgentProjectSettings {
  readonly env: Readonly<Record<string, string | number | boolean>>;
  readonly dockerSocket: boolean;
  readonly capAdd: readonly string[];
  readonly enableHostProxy: boolean;
}

export const DEFAULT_PROJECT_SETTINGS: AgentProjectSettings = { env: {}, dockerSocket: false, capAdd: [], enableHostProxy: true };

/** From a loaded project (`loadProject(...).config`); the schema's defaults when there is no file. */
export function projectSettingsOf(config: { agent?: { env?: Record<string, string | number | boolean> }; security?: { docker_socket?: boolean; cap_add?: string[]; enable_host_proxy?: boolean } } | undefined): AgentProjectSettings {
  return {
    env: config?.agent?.env ?? {},
    dockerSocket: config?.security?.docker_socket ?? false,
    capAdd: config?.security?.cap_add ?? [],
    enableHostProxy: config?.security?.enable_host_proxy ?? true,
  };
}

export type AgentFirewall =
  | {
      readonly enabled: true;
      /** CoreDNS's address on the stack's network (Status.network.coredns). */
      readonly corednsIp: string;
      /** agentsCgroupParent(driver, names.agentsCgroup). */
      readonly cgroupParent: string;
    }
  | { readonly enabled: false };

export interface AgentSpecInput {
  readonly stack: StackNames;
  readonly project: string;
  readonly agent: string;
  readonly image: string;
  /** The host folder bind-mounted read-write at WORKSPACE_DIR: absolute. */
  readonly workspace: string;
  readonly settings: AgentProjectSettings;
  readonly firewall: AgentFirewall;
  /** The host proxy's URL as the agent reaches it; set when `settings.enableHostProxy` (else a warning). */
  readonly hostProxyUrl?: string;
  /** The command; default: none, so the image's CMD (`claude`) runs under agentd. */
  readonly cmd?: readonly string[];
  /** The image's own environment (`NAME=value`), so `${NAME}` in agent.env can refer to it. */
  readonly imageEnv?: readonly string[];
  /** The host's Docker socket (settings `docker.socket`); only used with `security.docker_socket`. */
  readonly hostDockerSocket?: string;
  /** The user's home folder: refused as a workspace (it holds their keys and credentials). */
  readonly homeDir?: string;
  /** Labels of the caller (tests); ours win over them. */
  readonly extraLabels?: Readonly<Record<string, string>>;
  /** False for an image whose PID 1 is not agentd (the firewall suites' probes): enrolled, never sessioned. */
  readonly supervised?: boolean;
}

export interface AgentMount {
  readonly Type: 'bind';
  readonly Source: string;
  readonly Target: string;
  readonly ReadOnly: boolean;
}

/** The options of Docker's container create call (the name apart). */
export interface AgentCreateOptions {
  readonly Image: string;
  readonly Cmd?: string[];
  readonly Env: string[];
  readonly Labels: Record<string, string>;
  readonly WorkingDir: string;
  readonly Tty: true;
  readonly OpenStdin: true;
  readonly StdinOnce: false;
  readonly AttachStdin: false;
  readonly AttachStdout: false;
  readonly AttachStderr: false;
  readonly HostConfig: {
    readonly NetworkMode: string;
    readonly Dns?: string[];
    readonly CgroupParent?: string;
    readonly Mounts: AgentMount[];
    readonly CapDrop: string[];
    readonly CapAdd: string[];
    readonly SecurityOpt: string[];
    readonly Privileged: false;
    readonly Init: false;
    readonly IpcMode: 'private';
    readonly PidMode: '';
    readonly ReadonlyRootfs: false;
    readonly RestartPolicy: { readonly Name: 'no' };
    /** With the host proxy: host.docker.internal, the engine's host-gateway. */
    readonly ExtraHosts?: string[];
  };
}

export interface AgentContainerSpec {
  readonly name: string;
  readonly create: AgentCreateOptions;
  /** Things the user chose that weaken the sandbox, or that did not apply: print each one. */
  readonly warnings: readonly string[];
}

/** The configuration asks for something that would break the sandbox; nothing was created. */
export class AgentSpecError extends Error {
  override readonly name = 'AgentSpecError';
}

// ---- capabilities --------------------------------------------------------------------------------

/** Every Linux capability Docker knows by name (without CAP_). */
export const LINUX_CAPABILITIES: readonly string[] = [
  'AUDIT_CONTROL', 'AUDIT_READ', 'AUDIT_WRITE', 'BLOCK_SUSPEND', 'BPF', 'CHECKPOINT_RESTORE', 'CHOWN', 'DAC_OVERRIDE',
  'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'IPC_LOCK', 'IPC_OWNER', 'KILL', 'LEASE', 'LINUX_IMMUTABLE', 'MAC_ADMIN',
  'MAC_OVERRIDE', 'MKNOD', 'NET_ADMIN', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_RAW', 'PERFMON', 'SETFCAP', 'SETGID',
  'SETPCAP', 'SETUID', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_CHROOT', 'SYS_MODULE', 'SYS_NICE', 'SYS_PACCT', 'SYS_PTRACE',
  'SYS_RAWIO', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'SYSLOG', 'WAKE_ALARM',
];

/**
 * Capabilities `security.cap_add` may not grant, and why. The firewall holds because the agent
 * cannot touch the network stack or the kernel's eBPF state; these would let it.
 */
export const REFUSED_CAPABILITIES: Readonly<Record<string, string>> = {
  ALL: 'every capability, including the ones below',
  NET_RAW: 'raw and packet sockets: hand-made packets past the firewall',
  NET_ADMIN: "reconfigures the container's interfaces, routes and packet filters around the firewall",
  SYS_ADMIN: 'mounts, namespaces and eBPF: can take the firewall apart and escape the container',
  BPF: "loads and reads eBPF programs and maps: the firewall's own machinery",
  PERFMON: 'with BPF, attaches tracing programs to the host kernel',
  SYS_MODULE: 'loads kernel modules into the host kernel',
  SYS_RAWIO: 'raw I/O ports and devices of the host',
  DAC_READ_SEARCH: "open_by_handle_at: reads files of the host outside the container's mounts",
  MAC_ADMIN: "changes the host's AppArmor/SELinux policy",
  MAC_OVERRIDE: "overrides the host's AppArmor/SELinux policy",
};

/** `cap_add` entries as Docker names them: upper case, without CAP_. */
export const normalizeCapability = (cap: string): string => cap.trim().toUpperCase().replace(/^CAP_/, '');

/**
 * The effective CapAdd: the supervisor's capabilities plus the project's, in that order, without
 * repeats. Throws AgentSpecError for an unknown or refused capability (naming all of them).
 */
export function effectiveCapabilities(capAdd: readonly string[]): { capAdd: string[]; warnings: string[] } {
  const problems: string[] = [];
  const extra: string[] = [];
  for (const raw of capAdd) {
    const cap = normalizeCapability(raw);
    if (REFUSED_CAPABILITIES[cap]) problems.push(`${cap} (${REFUSED_CAPABILITIES[cap]})`);
    else if (!LINUX_CAPABILITIES.includes(cap)) problems.push(`${JSON.stringify(raw)} is not a Linux capability`);
    else if (!extra.includes(cap) && !(AGENTD_CAPABILITIES as readonly string[]).includes(cap)) extra.push(cap);
  }
  if (problems.length) {
    throw new AgentSpecError(`security.cap_add: refused ${problems.join('; ')}. Remove ${problems.length === 1 ? 'it' : 'them'} from .clawker.yaml; agents never get these.`);
  }
  const warnings = extra.length ? [`security.cap_add gives the agent container ${extra.map((c) => `CAP_${c}`).join(', ')} beyond the supervisor's own (${AGENTD_CAPABILITIES.join(', ')})`] : [];
  return { capAdd: [...AGENTD_CAPABILITIES, ...extra], warnings };
}

// ---- environment ---------------------------------------------------------------------------------

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** agent.env may not set these: clawker's own variables say what the agent is and where it runs. */
export const RESERVED_ENV_PREFIX = 'CLAWKER_';

const envMap = (lines: readonly string[]): Map<string, string> => {
  const map = new Map<string, string>();
  for (const line of lines) {
    const eq = line.indexOf('=');
    if (eq < 1) continue; // no '=', or no name before it
    map.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return map;
};

/**
 * The container's environment, in order: clawker's variables (CLAWKER_PROJECT, CLAWKER_AGENT,
 * CLAWKER_FIREWALL_ENABLED, CLAWKER_HOST_PROXY when the host proxy is on), then agent.env.
 * agent.env cannot set CLAWKER_* (dropped, with a warning). `${NAME}` in a value is replaced by
 * NAME's value in the container (the image's environment, clawker's, or an earlier agent.env
 * entry); an unknown NAME becomes '' with a warning.
 */
export function agentEnvironment(
  base: Readonly<Record<string, string>>,
  agentEnv: Readonly<Record<string, string | number | boolean>>,
  // Stryker disable next-line ArrayDeclaration: envMap skips a line without '=', so a default holding such a line adds nothing
  imageEnv: readonly string[] = [],
): { env: string[]; warnings: string[] } {
  const warnings: string[] = [];
  const known = envMap(imageEnv);
  const env: string[] = [];
  for (const [key, value] of Object.entries(base)) {
    env.push(`${key}=${value}`);
    known.set(key, value);
  }
  const invalid = Object.keys(agentEnv).filter((k) => !ENV_NAME.test(k));
  if (invalid.length) throw new AgentSpecError(`agent.env: ${invalid.map((k) => JSON.stringify(k)).join(', ')} ${invalid.length === 1 ? 'is not a variable name' : 'are not variable names'} (letters, digits and '_', not starting with a digit)`);
  for (const [key, raw] of Object.entries(agentEnv)) {
    if (key.toUpperCase().startsWith(RESERVED_ENV_PREFIX)) {
      warnings.push(`agent.env: ${key} ignored: ${RESERVED_ENV_PREFIX}* variables are set by clawker`);
      continue;
    }
    if ((SUPERVISOR_STRIPPED_ENV as readonly string[]).includes(key)) {
      warnings.push(`agent.env: ${key} ignored: it would run code in the root supervisor, so the image removes it before anything starts; set it in the agent's command instead (clawker run -- env ${key}=… claude)`);
      continue;
    }
    const value = String(raw).replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const found = known.get(name);
      if (found === undefined) warnings.push(`agent.env: ${key} refers to \${${name}}, which the container does not set; it became ''`);
      return found ?? '';
    });
    if (value.includes('\0')) throw new AgentSpecError(`agent.env: ${key} contains a NUL character`);
    env.push(`${key}=${value}`);
    known.set(key, value);
  }
  return { env, warnings };
}

// ---- the container -------------------------------------------------------------------------------

function checkWorkspace(workspace: string, homeDir: string | undefined): void {
  if (!workspace.startsWith('/')) throw new AgentSpecError(`the workspace ${JSON.stringify(workspace)} is not an absolute path`);
  if (workspace.includes('\0')) throw new AgentSpecError('the workspace path contains a NUL character');
  const trimmed = workspace.replace(/\/+$/, '') || '/';
  if (trimmed === '/') throw new AgentSpecError('refusing to mount / as the workspace: the agent could change every file of this machine. Run clawker from the project folder (or pass --project-dir).');
  if (homeDir && trimmed === homeDir.replace(/\/+$/, '')) {
    throw new AgentSpecError(`refusing to mount your home folder ${trimmed} as the workspace: it holds your keys and credentials. Run clawker from the project folder (or pass --project-dir).`);
  }
}

/** The name, the create options and the warnings of one agent container. */
export function agentContainerSpec(input: AgentSpecInput): AgentContainerSpec {
  const name = agentContainerName(input.stack.prefix, input.project, input.agent);
  checkWorkspace(input.workspace, input.homeDir);
  const warnings: string[] = [];

  const caps = effectiveCapabilities(input.settings.capAdd);
  warnings.push(...caps.warnings);

  const base: Record<string, string> = {
    [ENV_PROJECT]: input.project,
    [ENV_AGENT]: input.agent,
    [ENV_FIREWALL_ENABLED]: input.firewall.enabled ? 'true' : 'false',
  };
  if (input.settings.enableHostProxy) {
    if (input.hostProxyUrl) base[ENV_HOST_PROXY] = input.hostProxyUrl;
    else warnings.push('the host proxy is enabled but not available: git HTTPS credentials and browser sign-in will not work in this agent');
  }
  const environment = agentEnvironment(base, input.settings.env, input.imageEnv);
  warnings.push(...environment.warnings);

  const mounts: AgentMount[] = [{ Type: 'bind', Source: input.workspace, Target: WORKSPACE_DIR, ReadOnly: false }];
  if (input.settings.dockerSocket) {
    mounts.push({ Type: 'bind', Source: input.hostDockerSocket ?? DEFAULT_HOST_DOCKER_SOCKET, Target: CONTAINER_DOCKER_SOCKET, ReadOnly: false });
    warnings.push(
      `security.docker_socket: true mounts the Docker socket into ${name}: the agent has full control of your Docker daemon, and so of this machine` +
        (input.firewall.enabled ? ', and can start containers the firewall does not cover' : '') +
        '. Set it to false unless the agent really needs Docker.',
    );
  }

  if (input.cmd && input.cmd.length === 0) throw new AgentSpecError('the command after -- is empty');

  const firewall = input.firewall;
  return {
    name,
    create: {
      Image: input.image,
      ...(input.cmd ? { Cmd: [...input.cmd] } : {}),
      Env: environment.env,
      Labels: {
        ...(input.extraLabels ?? {}),
        ...managedLabels('agent', {
          [LABEL_STACK]: input.stack.prefix,
          [LABEL_PROJECT]: input.project,
          [LABEL_AGENT]: input.agent,
          [LABEL_WORKSPACE]: input.workspace,
          [LABEL_FIREWALL]: firewall.enabled ? 'enabled' : 'disabled',
          // PID 1 is agentd: the control plane starts the command over the session once enrolled.
          ...(input.supervised === false ? {} : { [LABEL_SUPERVISOR]: SUPERVISOR_AGENTD }),
        }),
      },
      WorkingDir: WORKSPACE_DIR,
      Tty: true,
      OpenStdin: true,
      StdinOnce: false,
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      HostConfig: {
        ...(firewall.enabled
          ? { NetworkMode: input.stack.network, Dns: [firewall.corednsIp], CgroupParent: firewall.cgroupParent }
          : { NetworkMode: 'bridge' }),
        Mounts: mounts,
        CapDrop: ['ALL'],
        CapAdd: caps.capAdd,
        SecurityOpt: ['no-new-privileges:true'],
        Privileged: false,
        Init: false,
        IpcMode: 'private',
        PidMode: '',
        ReadonlyRootfs: false,
        RestartPolicy: { Name: 'no' },
        ...(input.hostProxyUrl ? { ExtraHosts: [HOST_GATEWAY_EXTRA_HOST] } : {}),
      },
    },
    warnings,
  };
}
