/**
 * The control plane's API, as both sides see it: HTTP/1.1 with JSON bodies over a Unix socket inside
 * the control-plane container (CONTROL_PLANE_API_SOCKET, on a tmpfs only it mounts). The host reaches
 * it through a `docker exec` session running `bpfman relay` (src/platform/controlPlaneTransport.ts):
 * nothing listens on a network port and no socket file crosses to the host. The CLI is its client;
 * the extension follows status and events through long-lived CLI processes.
 *
 *   GET    /v1/status                      Status
 *   POST   /v1/reload                      ReloadResult   body StackInputs (optional): adopt the host's
 *                                                         rule store and CA, re-render, sync routes
 *   POST   /v1/agents/:agent/enable        AgentResult
 *   POST   /v1/agents/:agent/disable       AgentResult
 *   POST   /v1/agents/:agent/bypass        AgentResult    body {"seconds": N}
 *   DELETE /v1/agents/:agent/bypass        AgentResult
 *   GET    /v1/events?tail=N&follow=1      JSON lines (EgressEvent, src/core/events)
 *   POST   /v1/down                        DownResult     agents locked down, stack stopped
 *
 * `:agent` names one running agent (URL-encoded), in any of these forms:
 *   - its container name, exactly (`clawker.web.dev`): always unambiguous, what clients should pass;
 *   - its container id, in full or a prefix of at least 12 hex digits;
 *   - its bare agent name (`dev`) while exactly one running agent has it.
 * A bare name two running agents share (two projects each with a `dev`) is refused with 409 and
 * `candidates` (their container names); an unknown agent is 404.
 *
 * Errors: a non-2xx status with {"error": "...", "component"?: "...", "next"?: "...", "candidates"?: [...]}.
 */
/** The API's socket inside the control-plane container. */
export const CONTROL_PLANE_API_SOCKET = '/run/clawker/controlplane.sock';
/** The tmpfs holding it: the container's root file system is read-only. */
export const CONTROL_PLANE_RUN_DIR = '/run/clawker';

export type ComponentName = 'datapath' | 'coredns' | 'envoy' | 'controlplane';

export interface ComponentHealth {
  readonly name: ComponentName;
  readonly healthy: boolean;
  /** One line: what was seen ("HTTP 200 from 10.0.0.201:18902/health", "container exited (137)"). */
  readonly detail: string;
  /** When unhealthy: what to do. */
  readonly next?: string;
}

export type AgentState = 'enrolled' | 'disabled' | 'bypassed' | 'locked-down';

export interface AgentStatus {
  /** The agent name (`dev.clawker.agent`); agents of different projects may share it. */
  readonly agent: string;
  /** The container's full id. */
  readonly container: string;
  /**
   * The container's name (`<stack>.<project>.<agent>`): unique, the form to pass as `:agent`. Absent
   * only when a control plane from before this field answers; `container` (the id) works as well.
   */
  readonly containerName?: string;
  readonly cgroupId: number;
  readonly state: AgentState;
  /** ISO time the bypass window closes. */
  readonly bypassUntil?: string;
  /** True when the agent runs under the agents' cgroup (enforced from its first instruction). */
  readonly guarded: boolean;
}

export interface Status {
  /** "starting: <step>", "ready", "draining", "idle" (no agents: stack stopped), "down". */
  readonly phase: string;
  readonly components: readonly ComponentHealth[];
  readonly agents: readonly AgentStatus[];
  readonly rules: number;
  readonly routes: number;
  readonly network: {
    readonly name: string;
    readonly subnet: string;
    readonly envoy: string;
    readonly coredns: string;
    readonly controlplane: string;
    /** host.docker.internal in the stack's containers: the one host address agents may reach (the host proxy's port); absent: none. */
    readonly hostGateway?: string;
  };
  readonly pinDir: string;
  /**
   * Kernel events not reported since the datapath was loaded: lost to a full ring, or held back by
   * the per-agent rate limit (the decisions were still applied). Absent from older control planes.
   */
  readonly eventDrops?: { readonly ring: number; readonly rateLimited: number };
}

/**
 * What the host owns and the control plane keeps a copy of: the rule store file's text and the CA's
 * three PEM files, sent as they are on the host (the host is their source of truth). `firewall up`
 * puts them into the control plane's volume before it starts; a reload carries them in its body.
 */
export interface StackInputs {
  /** `<data dir>/firewall/rules.json`, verbatim (an empty store when the host has none). */
  readonly rules: string;
  readonly ca: { readonly certificate: string; readonly key: string; readonly leafKey: string };
}

/** A reload body may carry a rule store of many rules; anything else stays small. */
export const MAX_RELOAD_BODY = 8 * 1024 * 1024;

export interface ReloadResult {
  readonly rules: number;
  readonly routes: number;
  readonly corednsReloaded: boolean;
  readonly millis: number;
}

export interface AgentResult {
  readonly agent: AgentStatus;
  readonly message: string;
}

export interface DownResult {
  /** The agents locked down, by agent name, or by container name where two share an agent name. */
  readonly lockedDown: readonly string[];
  readonly stopped: readonly string[];
}

export interface ApiError {
  readonly error: string;
  readonly component?: ComponentName;
  readonly next?: string;
  /** 409 (an agent name several running agents share): the container names to choose from. */
  readonly candidates?: readonly string[];
}
