/**
 * Where Clawker runs, and a clear answer where it does not (issue 14, item 7). Two checks: the
 * machine the extension or CLI runs on (before any Docker call), and the engine it reached (from
 * `docker version` and `docker info`). Pure: the caller gathers the facts.
 */
import type { EngineAddress } from './engineAddress';

export type Verdict =
  | { readonly ok: true; readonly kind: EngineKind | 'host' }
  | { readonly ok: false; readonly what: string; readonly next: string };

/** What kind of engine; decides file ownership (local Linux maps the user's UID) and the host proxy's address. */
export type EngineKind = 'linux-local' | 'docker-desktop' | 'orbstack' | 'colima' | 'remote';

export interface HostFacts {
  readonly platform: NodeJS.Platform;
  /** VS Code's `env.remoteName` (`wsl`, `ssh-remote`, `dev-container`, `codespaces`…); undefined when local or in the CLI. */
  readonly remoteName?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** In a dev container or Codespace: the Docker engine is usually not reachable from inside. */
export function inContainerWorkspace(h: HostFacts): 'codespaces' | 'dev-container' | undefined {
  if (h.remoteName === 'codespaces' || h.env.CODESPACES === 'true') return 'codespaces';
  if (h.remoteName === 'dev-container' || h.remoteName === 'attached-container' || h.env.REMOTE_CONTAINERS === 'true') return 'dev-container';
  return undefined;
}

/** The machine we run on, before any Docker call. */
export function hostSupport(h: HostFacts): Verdict {
  if (h.platform === 'win32') {
    return {
      ok: false,
      what: 'Clawker does not run on Windows directly: its firewall needs a Linux kernel next to the Docker engine',
      next: 'open this folder in WSL (Command Palette: "WSL: Reopen Folder in WSL"), with Docker Desktop\'s WSL integration or Docker Engine inside WSL',
    };
  }
  if (h.platform !== 'linux' && h.platform !== 'darwin') return { ok: false, what: `Clawker does not run on ${h.platform}`, next: 'use Linux, macOS or Windows with WSL' };
  return { ok: true, kind: 'host' };
}

/** `docker version` and `docker info`, the fields that tell engines apart. */
export interface EngineFacts {
  readonly version: { readonly Components?: readonly { readonly Name?: string }[]; readonly Platform?: { readonly Name?: string } };
  readonly info: { readonly OperatingSystem?: string; readonly Name?: string; readonly SecurityOptions?: readonly string[]; readonly OSType?: string };
  /** The CLI's platform, and whether the engine's address is a local unix socket. */
  readonly hostPlatform: NodeJS.Platform;
  readonly unixSocket: boolean;
  readonly workspace?: 'codespaces' | 'dev-container';
}

/** The engine we reached: Podman and rootless Docker are refused until a test runs them; the rest get a kind. */
export function engineSupport(e: EngineFacts): Verdict {
  const components = (e.version.Components ?? []).map((c) => c.Name ?? '');
  const platformName = e.version.Platform?.Name ?? '';
  if (components.some((n) => /podman/i.test(n)) || /podman/i.test(platformName)) {
    return {
      ok: false,
      what: 'this Docker API is served by Podman, which Clawker does not support yet (its containers sit in libpod cgroups the firewall does not attach to)',
      next: 'use Docker Engine (rootful), Docker Desktop, Colima or OrbStack; point DOCKER_HOST or the docker context at it',
    };
  }
  if ((e.info.SecurityOptions ?? []).some((o) => /(^|,)name=rootless(,|$)/.test(o))) {
    return {
      ok: false,
      what: "this Docker engine runs rootless, which Clawker does not support yet: the firewall's eBPF programs need a rootful engine",
      next: 'use the rootful engine (sudo systemctl start docker; DOCKER_HOST=unix:///var/run/docker.sock), or Docker Desktop',
    };
  }
  if (e.info.OSType !== undefined && e.info.OSType !== 'linux') {
    return { ok: false, what: `this Docker engine runs ${e.info.OSType} containers; Clawker needs Linux containers`, next: 'switch Docker Desktop to Linux containers' };
  }
  const os = e.info.OperatingSystem ?? '';
  if (/Docker Desktop/i.test(os)) return { ok: true, kind: 'docker-desktop' };
  if (/OrbStack/i.test(os)) return { ok: true, kind: 'orbstack' };
  if (e.info.Name === 'colima' || /^colima(-|$)/.test(e.info.Name ?? '')) return { ok: true, kind: 'colima' };
  // A socket on a Linux host, outside a dev container, is this machine's own engine.
  if (e.unixSocket && e.hostPlatform === 'linux' && e.workspace === undefined) return { ok: true, kind: 'linux-local' };
  return { ok: true, kind: 'remote' };
}

/** Why a dev container or Codespace cannot run Clawker when its engine is unreachable. */
export function containerWorkspaceAdvice(where: 'codespaces' | 'dev-container'): { what: string; next: string } {
  return where === 'codespaces'
    ? { what: 'this Codespace has no Docker engine Clawker can use', next: 'add the docker-in-docker or docker-outside-of-docker feature to the Codespace, or open the project locally' }
    : { what: 'this dev container cannot reach a Docker engine', next: 'add the docker-outside-of-docker feature (it mounts the host engine), or open the folder locally or in WSL' };
}

/** Error codes that mean "no engine answered there" (as opposed to a refused request). */
export const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ENOENT', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'ECONNRESET']);

/** The message and next step when the engine cannot be used: `where` names it (describeEngine). */
export function engineUnreachable(where: string, code: string, h: Pick<HostFacts, 'env' | 'remoteName'>): { what: string; next: string } {
  if (code === 'EACCES') return { what: `no permission to use ${where}`, next: 'add yourself to the docker group (sudo usermod -aG docker $USER, then log in again)' };
  const workspace = inContainerWorkspace({ platform: 'linux', env: h.env, ...(h.remoteName ? { remoteName: h.remoteName } : {}) });
  if (workspace) {
    const advice = containerWorkspaceAdvice(workspace);
    return { what: `cannot reach ${where} (${code}): ${advice.what}`, next: advice.next };
  }
  return { what: `cannot reach ${where} (${code})`, next: 'start the Docker engine (sudo systemctl start docker, or open Docker Desktop), or point DOCKER_HOST, settings.yaml docker.host or the docker context at it' };
}

/**
 * When `e` says no engine answered (or one refused us): the message and next step naming `where`;
 * undefined for any other error. Node gives the code on the error, dockerode sometimes only in the
 * message (`connect ENOENT /var/run/docker.sock`).
 */
export function unreachableAdvice(e: unknown, where: string, h: Pick<HostFacts, 'env' | 'remoteName'>): { what: string; next: string } | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code ?? /connect (ENOENT|ECONNREFUSED)/.exec(e instanceof Error ? e.message : String(e))?.[1];
  if (code === undefined || (code !== 'EACCES' && !UNREACHABLE_CODES.has(code))) return undefined;
  return engineUnreachable(where, code, h);
}

/**
 * An engine reached over SSH runs on another machine: a bind mount names a path there, not this
 * machine's project folder, and would mount an empty or wrong directory. Refused before anything
 * is created, with where to run instead. (A TCP engine may be a VM that shares folders, as Docker
 * Desktop's does: it is trusted to, and the mount fails loudly when it does not.)
 */
export function workspaceUnreachable(address: EngineAddress, where: string, workspace: string): { what: string; next: string } | undefined {
  if (address.kind !== 'ssh') return undefined;
  return {
    what: `${where} runs on ${address.host}, which cannot see ${workspace} on this machine, so the agent's workspace cannot be mounted`,
    next: `open the folder on ${address.host} with VS Code Remote - SSH (Clawker then runs there, next to its engine), or use a Docker engine on this machine`,
  };
}
