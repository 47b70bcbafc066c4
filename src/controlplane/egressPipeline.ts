/**
 * One stream of egress decisions: kernel verdicts (the datapath's ring buffer, via bpfman), CoreDNS
 * refusals and proxy decisions (their logs, followed through Docker), and the control plane's own
 * audit records (bypass opened/ended, agents enrolled, firewall down). Each becomes one EgressEvent:
 * appended as a JSON line to <data dir>/events/egress.jsonl and fanned out to API subscribers.
 */
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { type EgressEvent, fromCorednsLog, fromEnvoyAccessLog, fromKernelEvent } from '../core/events/egressEvent';
import { EventHub } from '../core/events/eventHub';
import { demuxLogFrames } from '../platform/docker/containers';
import { EventLog } from '../platform/events/eventLog';
import type { Bpfman } from '../platform/bpf/bpfman';
import type { EventSource } from './api';
import type { ControlPlaneConfig } from './config';
import type { ControlPlane } from './controlPlane';

/** CLOCK_BOOTTIME now, in ms (what /proc/uptime counts, suspend included). */
function bootTimeMs(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
}

export class EgressPipeline implements EventSource {
  private readonly hub = new EventHub<EgressEvent>();
  private readonly log: EventLog;
  private follower: ChildProcess | undefined;
  private stopped = false;
  private bootOffsetMs = Date.now() - bootTimeMs();

  constructor(
    private readonly config: ControlPlaneConfig,
    private readonly docker: Docker,
    private readonly bpf: Bpfman,
    private readonly controlPlane: ControlPlane,
    private readonly warn: (message: string) => void,
  ) {
    this.log = new EventLog(config.eventsFile, { onError: (e) => warn(`writing ${config.eventsFile}: ${e.message}`) });
  }

  start(): void {
    void this.followKernel();
    const agentOfIp = (ip: string) => {
      const a = this.controlPlane.agentOfIp(ip);
      return a ? { name: a.agent, container: a.container } : undefined;
    };
    void this.followLogs(this.config.names.coredns, (line) => fromCorednsLog(line, { wallTime: new Date(), agentOfIp }));
    void this.followLogs(this.config.names.envoy, (line) => fromEnvoyAccessLog(line, { agentOfIp }));
  }

  stop(): void {
    this.stopped = true;
    this.follower?.kill('SIGTERM');
  }

  publish(event: EgressEvent): void {
    this.log.append(event);
    this.hub.publish(event);
  }

  audit(message: string, fields: { agent?: string; container?: string; cgroupId?: number; verdict?: 'allowed' | 'denied' | 'bypassed'; since?: string }): void {
    this.publish({
      time: new Date().toISOString(),
      source: 'controlplane',
      verdict: fields.verdict ?? 'allowed',
      message,
      ...(fields.agent ? { agent: fields.agent } : {}),
      ...(fields.container ? { container: fields.container } : {}),
      ...(fields.cgroupId !== undefined ? { cgroupId: fields.cgroupId } : {}),
      ...(fields.since ? { since: fields.since } : {}),
    });
  }

  tail(n: number): unknown[] {
    return this.log.readTail(n);
  }

  subscribe(listener: (event: unknown, dropped: number) => void, options?: { stream?: NodeJS.WritableStream }): () => void {
    return this.hub.subscribe(listener, options?.stream ? { stream: options.stream as never } : {});
  }

  private async followKernel(): Promise<void> {
    while (!this.stopped) {
      await new Promise<void>((resolve) => {
        this.follower = this.bpf.followEvents(
          (raw) => {
            const event = fromKernelEvent(raw, {
              wallTimeOf: (bootNs) => new Date(this.bootOffsetMs + bootNs / 1e6),
              agentOf: (cgroupId) => {
                const a = this.controlPlane.agentOfCgroup(cgroupId);
                return a ? { name: a.agent, container: a.container } : undefined;
              },
              domainOf: (key) => this.controlPlane.domainOfKey(key),
            });
            if (event) this.publish(event);
          },
          (code, stderr) => {
            if (!this.stopped) this.warn(`kernel event follower exited (${code}): ${stderr.trim().split('\n').pop() ?? ''}; restarting`);
            resolve();
          },
        );
      });
      if (!this.stopped) await sleep(1000);
      this.bootOffsetMs = Date.now() - bootTimeMs();
    }
  }

  /** Follows a stack container's log from now on, across its restarts and re-creations. */
  private async followLogs(container: string, parse: (line: string) => EgressEvent | undefined): Promise<void> {
    let since = Math.floor(Date.now() / 1000);
    while (!this.stopped) {
      try {
        const stream = (await this.docker.getContainer(container).logs({ stdout: true, stderr: true, follow: true, since })) as unknown as NodeJS.ReadableStream;
        let pending: Buffer = Buffer.alloc(0);
        for await (const chunk of stream) {
          const { text, rest } = demuxLogFrames(Buffer.concat([pending, chunk as Buffer]));
          pending = rest;
          for (const line of text.split('\n')) {
            const event = line.trim() ? parse(line) : undefined;
            if (event) this.publish(event);
          }
          if (this.stopped) break;
        }
      } catch {
        // not there yet, or being replaced
      }
      since = Math.floor(Date.now() / 1000);
      if (!this.stopped) await sleep(1000);
    }
  }
}
