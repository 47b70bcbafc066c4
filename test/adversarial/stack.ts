/**
 * One firewall stack for the whole adversarial suite, brought up the way a user brings it up:
 * `clawker firewall up` (the CLI bundle) starts the real control-plane image, which loads the eBPF
 * datapath and starts CoreDNS (with dnsbpf) and the proxy (the Envoy stand-in of test/e2e/internet.ts,
 * which records every connection that reaches it); agent containers are made with the product's
 * agentContainerSpec on the python image and enrolled by that control plane. The "internet" is a
 * TestInternet: its resolver and origins record every query and connection, so an attack that got
 * through leaves a trace there.
 *
 * The stack images are the suites' own tags (test/e2e/stackImages.ts: clawker-*:e2e, or
 * CLAWKER_COREDNS_IMAGE / CLAWKER_CONTROLPLANE_IMAGE), built from this checkout. To run the suite
 * against a control plane built from a modified tree, run it from that tree with
 * CLAWKER_CONTROLPLANE_IMAGE=clawker-controlplane:<tag> (test/mutation/datapath.ts does).
 * ADVERSARIAL_CONTROLPLANE_IMAGE (optional) runs an image that is already built, as it is, instead.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { agentContainerSpec, DEFAULT_PROJECT_SETTINGS } from '../../src/core/stack/agentSpec';
import { agentsCgroupParent } from '../../src/core/stack/cgroupPaths';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { stackNames } from '../../src/core/stack/stackNames';
import { ensurePythonImage, PY_IMAGE } from '../e2e/datapath-testbed';
import { AGENT_PY } from '../e2e/firewall-agent-script';
import { ensureEnvoyStandinImage, envoyRecords, type EnvoyRecord, TestInternet } from '../e2e/internet';
import { ensureStackImages } from '../e2e/stackImages';
import { BPFFS_DIR, clawker, type ClawkerResult, E2E_PID_LABEL, pollUntil, readControlPlaneFile, removeCgroupDirs, requireTestbed, ROOT, run, runOk, testStackEnv, removeStackVolumes } from '../e2e/testbed';
import { ATTACK_PY } from './attack-script';

export type Json = Record<string, unknown>;

/** A kernel, DNS, proxy or control-plane record of <data dir>/events/egress.jsonl. */
export interface LoggedEvent {
  source: string;
  verdict: string;
  agent?: string;
  cgroupId?: number;
  reason?: string;
  hook?: string;
  dst?: { ip: string; port: number };
  redirect?: { ip: string; port: number };
  [k: string]: unknown;
}

/** The datapath's counters (`bpfman stats`). */
export interface DatapathStats {
  verdicts: Record<string, number>;
  eventsDrops: number;
  ratelimitDrops: Record<string, number>;
}

export const waitUntil = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 100): Promise<T> => pollUntil(what, fn, timeoutMs, everyMs);

export class AdversarialStack {
  readonly names = stackNames(`clawker-adv-${process.pid}`);
  readonly inet = new TestInternet();
  private readonly pinDir = join(BPFFS_DIR, this.names.prefix);
  private readonly dataDir = mkdtempSync(join(tmpdir(), 'clawker-adv-data-'));
  private readonly scriptsDir = mkdtempSync(join(tmpdir(), 'clawker-adv-agent-'));
  private readonly settings = join(this.dataDir, 'settings.yaml');
  private readonly docker = new Docker({ socketPath: '/var/run/docker.sock' });
  private readonly agents: string[] = [];
  private images: { coredns: string; controlplane: string; envoy: string } | undefined;
  status!: Status;

  /** Images, the internet (the caller then starts origins and sets the zone), the agent scripts. */
  async prepare(): Promise<void> {
    await requireTestbed();
    await runOk('node', [join(ROOT, 'scripts', 'build.mjs')], 120_000);
    const [stack, envoy] = await Promise.all([ensureStackImages(), ensureEnvoyStandinImage(), ensurePythonImage()]);
    this.images = { ...stack, envoy, controlplane: process.env.ADVERSARIAL_CONTROLPLANE_IMAGE || stack.controlplane };
    writeFileSync(join(this.scriptsDir, 'agent.py'), AGENT_PY);
    writeFileSync(join(this.scriptsDir, 'attack.py'), ATTACK_PY);
    await this.inet.start({});
    writeFileSync(this.settings, `firewall:\n  upstream_dns:\n    - ${this.inet.dnsIp}\n`);
  }

  private env(): NodeJS.ProcessEnv {
    const images = this.images!;
    return {
      ...process.env,
      ...testStackEnv({ dataDir: this.dataDir, stack: this.names.prefix, pinDir: this.pinDir, settings: this.settings, images }),
      CLAWKER_DRAIN_AFTER_MS: '600000',
    };
  }

  cli(...args: string[]): Promise<ClawkerResult> {
    return clawker(args, { env: this.env() });
  }

  async cliOk(...args: string[]): Promise<string> {
    const r = await this.cli(...args);
    assert.equal(r.code, 0, `clawker ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** `firewall up`, then the internet is opened to the firewall network (as a real uplink would be). */
  async up(): Promise<void> {
    const up = await this.cli('firewall', 'up', '--json');
    assert.equal(up.code, 0, `firewall up failed:\n${up.stderr}\n${up.stdout}`);
    this.status = JSON.parse(up.stdout) as Status;
    await this.inet.routeFrom(this.status.network.subnet);
  }

  async fwStatus(): Promise<Status> {
    return JSON.parse((await this.cli('firewall', 'status', '--json')).stdout) as Status;
  }

  /** An agent container made by the product's spec, enrolled by the control plane; returns its name. */
  async startAgent(agent: string, project = 'adv'): Promise<string> {
    const { name, create } = agentContainerSpec({
      stack: this.names,
      project,
      agent,
      image: PY_IMAGE,
      cmd: ['sleep', 'infinity'],
      workspace: this.scriptsDir,
      settings: { ...DEFAULT_PROJECT_SETTINGS, enableHostProxy: false },
      firewall: { enabled: true, corednsIp: this.status.network.coredns, cgroupParent: agentsCgroupParent('cgroupfs', this.names.agentsCgroup) },
      supervised: false,
      extraLabels: { [E2E_PID_LABEL]: String(process.pid) },
    });
    this.agents.push(name);
    const container = await this.docker.createContainer({ name, ...create, HostConfig: { ...create.HostConfig, Binds: [`${this.scriptsDir}:/agent:ro`] } });
    await container.start();
    await waitUntil(`${agent} enrolled`, async () => ((await this.fwStatus()).agents.find((a) => a.containerName === name && a.state === 'enrolled') ? true : undefined));
    return name;
  }

  async agentIp(container: string): Promise<string> {
    const net = this.names.network;
    return (await runOk('docker', ['inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, container])).trim();
  }

  async cgroupIdOf(container: string): Promise<number> {
    const a = (await this.fwStatus()).agents.find((x) => x.containerName === container);
    assert.ok(a, `${container} is in the control plane's status`);
    return a.cgroupId;
  }

  async gateway(): Promise<string> {
    return (await runOk('docker', ['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Gateway}}', this.names.network])).trim();
  }

  /** Runs `python3 /agent/<script> args…` in the container as root; its one JSON line. */
  async exec(container: string, script: 'agent.py' | 'attack.py', ...args: string[]): Promise<Json> {
    const r = await run('docker', ['exec', container, 'python3', `/agent/${script}`, ...args], 60_000);
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as Json;
    } catch {
      throw new Error(`${script} ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
    }
  }

  proxy(): Promise<EnvoyRecord[]> {
    return envoyRecords(this.names.envoy);
  }

  async proxyConnections(): Promise<EnvoyRecord[]> {
    return (await this.proxy()).filter((r) => r.kind === 'conn');
  }

  /** The proxy connections after the first `n`, once at least one is there. */
  async proxyConnectionsAfter(n: number, atLeast = 1): Promise<EnvoyRecord[]> {
    return waitUntil('the proxy saw the connection', async () => {
      const c = (await this.proxyConnections()).slice(n);
      return c.length >= atLeast ? c : undefined;
    }, 20_000);
  }

  /** Every event the control plane wrote, oldest first. */
  async events(): Promise<LoggedEvent[]> {
    const text = (await readControlPlaneFile(this.names.controlplane, 'events/egress.jsonl')) ?? '';
    return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LoggedEvent);
  }

  async datapathStats(): Promise<DatapathStats> {
    const out = await runOk('docker', ['exec', this.names.controlplane, '/opt/clawker/bpfman', 'stats', '--pin-dir', this.status.pinDir]);
    return JSON.parse(out) as DatapathStats;
  }

  async listenerPorts(): Promise<Record<string, number>> {
    return JSON.parse((await readControlPlaneFile(this.names.controlplane, 'firewall/stack/envoy/listeners.json')) ?? '{}') as Record<string, number>;
  }

  async teardown(): Promise<void> {
    await this.cli('firewall', 'down');
    for (const a of this.agents) await run('docker', ['rm', '-f', a]);
    for (const n of [this.names.controlplane, this.names.envoy, this.names.coredns]) await run('docker', ['rm', '-f', n]);
    await run('docker', ['network', 'rm', this.names.network]);
    await removeStackVolumes(this.names);
    await this.inet.stop();
    rmSync(this.pinDir, { recursive: true, force: true });
    await removeCgroupDirs(this.names.agentsCgroup);
    rmSync(this.dataDir, { recursive: true, force: true });
    rmSync(this.scriptsDir, { recursive: true, force: true });
  }
}
