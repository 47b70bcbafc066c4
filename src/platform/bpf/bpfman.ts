/**
 * The eBPF datapath, driven through `bpfman` (images/controlplane/bpfman, Go + cilium/ebpf): load and
 * pin, attach to cgroups, enroll, replace the route table, bypass, flush, observe. The Go tool owns
 * the map layouts (it embeds the object and checks its mirrors against the BTF), so this side only
 * passes arguments — always as an argv array, never through a shell — and reads its JSON.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** container_map's config for one cgroup (`bpfman enroll --config`). */
export interface ContainerConfig {
  readonly envoy: string;
  readonly coredns: string;
  readonly gateway: string;
  /** The firewall network, CIDR. */
  readonly network: string;
  readonly flags?: readonly ('lockdown' | 'disabled')[];
  readonly eventsPerSecond?: number;
  readonly eventsBurst?: number;
  /**
   * The host proxy: the one TCP address and port of the host the container may connect to. The
   * address is the engine's host-gateway (where `host.docker.internal` points), never the network's
   * gateway, which stays refused. Both or neither (bpfman refuses one alone).
   */
  readonly hostProxyAddress?: string;
  readonly hostProxyPort?: number;
}

export interface LoadReport {
  readonly pinDir: string;
  /** By map: created | reused | replaced: <why>. */
  readonly maps: Record<string, string>;
  readonly programs: readonly string[];
  /** Cgroups carried over from a replaced container_map with only the lockdown flag. */
  readonly lockedDown?: readonly number[];
  readonly warnings?: readonly string[];
}

export interface RoutesReport {
  readonly routes: number;
  readonly staticDnsCache: number;
  readonly staticDnsRemoved: number;
  readonly fillMs: number;
  readonly swapUs: number;
}

export interface DatapathState {
  /** By cgroup id. */
  readonly containers: Record<string, ContainerConfig>;
  /** Seconds left, by cgroup id (0: expired). */
  readonly bypass: Record<string, number> | null;
  readonly routes: readonly { domainKey: string; l4: string; port: number; listenerPort: number }[] | null;
  /** ttl: seconds left, -1 permanent, 0 expired. */
  readonly dnsCache: readonly { address: string; domainKey: string; ttl: number }[] | null;
}

export class BpfmanError extends Error {
  constructor(
    readonly command: string,
    message: string,
  ) {
    super(message);
    this.name = 'BpfmanError';
  }
}

export type CgroupRef = { readonly cgroupDir: string } | { readonly cgroupId: number | bigint | string };

const cgroupArgs = (ref: CgroupRef): string[] => ('cgroupDir' in ref ? ['--cgroup', ref.cgroupDir] : ['--cgroup-id', String(ref.cgroupId)]);

export class Bpfman {
  constructor(
    readonly binary: string,
    readonly pinDir: string,
    private readonly timeoutMs = 60_000,
  ) {}

  private run<T>(command: string, args: readonly string[]): Promise<T> {
    return new Promise((resolve, reject) => {
      execFile(this.binary, [command, '--pin-dir', this.pinDir, ...args], { timeout: this.timeoutMs, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) {
          const detail = stderr.trim() || error.message;
          reject(new BpfmanError(command, (error as NodeJS.ErrnoException).code === 'ENOENT' ? `the datapath manager ${this.binary} is missing` : detail));
          return;
        }
        try {
          resolve(JSON.parse(stdout) as T);
        } catch {
          reject(new BpfmanError(command, `bpfman ${command} printed no JSON: ${stdout.slice(0, 200)}`));
        }
      });
    });
  }

  load(): Promise<LoadReport> {
    return this.run('load', []);
  }
  attach(cgroupDir: string): Promise<{ cgroupId: number; attached?: string[] }> {
    return this.run('attach', ['--cgroup', cgroupDir]);
  }
  detach(ref: CgroupRef): Promise<unknown> {
    return this.run('detach', cgroupArgs(ref));
  }
  enroll(ref: CgroupRef, config: ContainerConfig): Promise<{ cgroupId: number }> {
    return this.run('enroll', [...cgroupArgs(ref), '--config', JSON.stringify(config)]);
  }
  unenroll(ref: CgroupRef): Promise<unknown> {
    return this.run('unenroll', cgroupArgs(ref));
  }
  routes(entriesFile: string): Promise<RoutesReport> {
    return this.run('routes', ['--file', entriesFile]);
  }
  flush(): Promise<{ dnsCache: number; bypass: number; routes: number }> {
    return this.run('flush', []);
  }
  bypass(ref: CgroupRef, seconds: number): Promise<unknown> {
    return this.run('bypass', [...cgroupArgs(ref), '--seconds', String(seconds)]);
  }
  show(): Promise<DatapathState> {
    return this.run('show', []);
  }
  stats(): Promise<Record<string, unknown>> {
    return this.run('stats', []);
  }
  dnsGc(): Promise<{ removed: number }> {
    return this.run('dns-gc', []);
  }

  /**
   * Follows the event ring: one parsed JSON object per event. The ring has one consumer position,
   * so only one follower may run per pin directory. Returns the child so the caller can stop it.
   */
  followEvents(onEvent: (raw: unknown) => void, onExit: (code: number | null, stderr: string) => void): ChildProcess {
    const child = spawn(this.binary, ['events', '--pin-dir', this.pinDir, '--follow'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        onEvent(JSON.parse(line));
      } catch {
        // A torn line is dropped; bpfman counts what the kernel dropped.
      }
    });
    child.on('error', (e) => void (stderr += e.message));
    child.on('exit', (code) => onExit(code, stderr));
    return child;
  }
}
