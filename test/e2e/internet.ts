/**
 * The end-to-end suite's own "internet", and the Envoy stand-in.
 *
 * TestInternet: a Docker bridge network of the run's own (a /24 of 198.18.0.0/15, the benchmarking
 * range: addresses that look public and that no LAN, Docker pool or other suite uses) holding a DNS
 * server at .53 (the upstream resolver CoreDNS is given) and origins at addresses the test picks.
 * Docker isolates bridges from each other; `routeFrom(subnet)` opens the way between the internet and
 * one other network with DOCKER-USER rules (and, by default, keeps Docker from masquerading that
 * traffic, so an origin sees who really connected: Envoy at .200, or an agent that got past it).
 *
 * The Envoy stand-in: Envoy cannot run on the test bed (no registry), so an image whose
 * `/usr/local/bin/envoy` is a Python program (ENVOY_PY) takes its place. The control plane starts it
 * exactly as it starts the real Envoy; it listens where the rendered lds.json says, picks filter
 * chains the way Envoy does (SNI, transport protocol), and records every connection.
 *
 * Everything is labelled with the test process's pid (containers, network) or carries it in an
 * iptables comment, so a killed run's leftovers are swept: sweepStale (testbed.ts),
 * sweepStaleNetworks (datapath-testbed.ts), sweepStaleInternetRoutes (here).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensurePythonImage, PY_IMAGE } from './datapath-testbed';
import { DNS_PY, ENVOY_PY, ORIGIN_PY } from './internet-scripts';
import { E2E_PID_LABEL, pidAlive, removeContainer, run, runOk, uniqueName } from './testbed';

/** One DNS question the internet's resolver answered. */
export interface DnsQueryRecord {
  kind: 'query';
  name: string;
  /** `A`, `AAAA`, … (the number as a string when unnamed). */
  type: string;
  qtype: number;
  peer: string;
  proto: 'udp' | 'tcp';
  rcode: 'NOERROR' | 'NXDOMAIN';
  answer?: string;
}

/** One TCP connection an origin accepted. */
export interface OriginConnection {
  kind: 'conn';
  origin: string;
  port: number;
  peer: string;
  peerPort: number;
  /** The origin's own address the connection reached. */
  local: string;
  /** Whether the client's first bytes were a TLS ClientHello. */
  tls: boolean;
  sni?: string;
  alpn?: string[];
  method?: string;
  path?: string;
  host?: string;
  error?: string;
}

/**
 * What the Envoy stand-in logged. `conn`: a TCP connection; `udp`: a datagram; `listeners`: the set of
 * ports after each (re)load of lds.json; `ready`; `config-error`, `bind-error`, `fatal`; `error` (a bug of
 * the stand-in while handling a connection).
 */
export interface EnvoyRecord {
  kind: 'conn' | 'udp' | 'listeners' | 'ready' | 'config-error' | 'bind-error' | 'fatal' | 'error';
  listener?: string;
  port?: number;
  peer?: string;
  peerPort?: number;
  local?: string;
  transport?: 'tls' | 'raw_buffer';
  sni?: string;
  alpn?: string[];
  chain?: string;
  /**
   * accepted: a filter chain took it; reset: no chain matched (Envoy closes the connection, the client
   * sees a RST); denied: a deny rule's chain (direct_response, closed without a byte); timeout: the TLS
   * inspector waited 15 s for the client's first bytes; closed: the client left first.
   */
  verdict?: 'accepted' | 'reset' | 'denied' | 'timeout' | 'closed';
  /** tcp_proxy / udp_proxy cluster, or the HTTP route's cluster (upstream_https / upstream_http). */
  cluster?: string;
  /** The pinned cluster's endpoint, `host:port` (TCP/UDP). */
  upstream?: string;
  /** TLS was terminated with the chain's certificate (rendered with `pki`); else tlsError says why not. */
  tls?: 'terminated';
  tlsError?: string;
  method?: string;
  path?: string;
  host?: string;
  /** The virtual host's name (HTTP). */
  vhost?: string;
  /** The matched route's name (HTTP): `path-default`, `deny`, `refused-path`, `path-<n>`. */
  route?: string;
  status?: number;
  version?: number;
  /** `listeners`: the TCP ports of lds.json's listeners now open (the static health listener apart). */
  ports?: number[];
  /** `listeners`: the UDP ports. */
  udp?: number[];
  error?: string;
}

/** Name (or `*.suffix`) → IPv4 address, or a host number on the internet network (10 → `<prefix>.10`). */
export type Zone = Record<string, string | number>;

export interface Origin {
  name: string;
  container: string;
  ip: string;
  ports: number[];
}

export interface InternetNetwork {
  name: string;
  /** "198.18.7" */
  prefix: string;
  subnet: string;
  gateway: string;
}

/** Marks our iptables rules; carries the pid so a killed run's rules can be swept. */
const RULE_TAG = 'clawker-e2e-inet';
const IPTABLES_TIMEOUT_MS = 30_000;

interface IptablesRule {
  table: 'filter' | 'nat';
  chain: string;
  /** The match and target, without -t/-I/-D and chain. */
  spec: string[];
}

function ruleSpec(src: string, dst: string, target: string, pid = process.pid): string[] {
  return ['-s', src, '-d', dst, '-m', 'comment', '--comment', `${RULE_TAG}:pid=${pid}`, '-j', target];
}

async function iptables(args: readonly string[]): Promise<void> {
  await runOk('iptables', ['-w', '5', ...args], IPTABLES_TIMEOUT_MS);
}

/** Read a container's JSON lines (stdout); non-JSON lines are skipped. */
async function jsonLogs<T>(container: string): Promise<T[]> {
  const out = await runOk('docker', ['logs', container]);
  const records: T[] = [];
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      records.push(JSON.parse(line) as T);
    } catch {
      // a line cut by the container's death
    }
  }
  return records;
}

async function waitFor<T>(read: () => Promise<T[]>, predicate: (r: T) => boolean, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = await read();
    const found = records.find(predicate);
    if (found) return found;
    if (Date.now() > deadline) {
      throw new Error(`no ${what} within ${timeoutMs} ms; last records:\n${records.slice(-10).map((r) => JSON.stringify(r)).join('\n')}`);
    }
    await sleep(100);
  }
}

async function waitReady(container: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = await jsonLogs<{ kind: string }>(container);
    if (records.some((r) => r.kind === 'ready')) return;
    const fatal = records.find((r) => r.kind === 'fatal');
    const state = (await run('docker', ['inspect', '-f', '{{.State.Status}}', container])).stdout.trim();
    if (fatal || state === 'exited' || state === 'dead' || Date.now() > deadline) {
      const logs = await run('docker', ['logs', container]);
      throw new Error(`${container} did not become ready (state ${state}):\n${logs.stdout}\n${logs.stderr}`);
    }
    await sleep(100);
  }
}

export class TestInternet {
  network: InternetNetwork | undefined;
  readonly scriptsDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-inet-'));
  private dnsContainer = '';
  private readonly origins = new Map<string, Origin>();
  private readonly containers: string[] = [];
  private readonly rules: IptablesRule[] = [];

  /** The resolver's address: what CoreDNS is given as its upstream. */
  get dnsIp(): string {
    return `${this.net().prefix}.53`;
  }

  /** An address on the internet network: `address(10)` is `<prefix>.10`. */
  address(host: number): string {
    if (!Number.isInteger(host) || host < 2 || host > 254 || host === 53) throw new Error(`host part ${host} is not free on the internet network (2–254, not 53)`);
    return `${this.net().prefix}.${host}`;
  }

  private net(): InternetNetwork {
    if (!this.network) throw new Error('TestInternet not started');
    return this.network;
  }

  /**
   * The network and the resolver. `zone` maps names to addresses (see Zone); `*.wild.test` answers
   * every name below wild.test (not wild.test itself) that no closer entry names. Other names: NXDOMAIN
   * (AAAA and other types of a known name: no data).
   */
  async start(zone: Zone = {}): Promise<void> {
    await ensurePythonImage();
    writeFileSync(join(this.scriptsDir, 'dns.py'), DNS_PY);
    writeFileSync(join(this.scriptsDir, 'origin.py'), ORIGIN_PY);
    this.network = await this.createNetwork();
    this.setZone(zone);
    this.dnsContainer = await this.startContainer('inet-dns', this.dnsIp, ['python3', '-u', '/inet/dns.py', '/inet/zone.json']);
    await waitReady(this.dnsContainer);
  }

  /** Replace the resolver's zone (it re-reads the file on its next query). */
  setZone(zone: Zone): void {
    const resolved: Record<string, string> = {};
    for (const [name, value] of Object.entries(zone)) {
      const ip = typeof value === 'number' ? this.address(value) : value;
      if (!/^(\*\.)?[a-z0-9.-]+$/i.test(name) || !/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) throw new Error(`zone entry ${name} → ${ip} is not a name and an IPv4 address`);
      resolved[name.toLowerCase()] = ip;
    }
    const tmp = join(this.scriptsDir, 'zone.json.tmp');
    writeFileSync(tmp, JSON.stringify(resolved));
    renameSync(tmp, join(this.scriptsDir, 'zone.json'));
  }

  private async createNetwork(): Promise<InternetNetwork> {
    const name = uniqueName('inet');
    for (let attempt = 0; attempt < 20; attempt++) {
      const prefix = `198.${18 + Math.floor(Math.random() * 2)}.${Math.floor(Math.random() * 256)}`;
      const r = await run('docker', [
        'network', 'create', '--driver', 'bridge', '--label', `${E2E_PID_LABEL}=${process.pid}`,
        '--subnet', `${prefix}.0/24`, '--gateway', `${prefix}.1`, name,
      ]);
      if (r.code === 0) return { name, prefix, subnet: `${prefix}.0/24`, gateway: `${prefix}.1` };
      if (!/overlap/i.test(r.stderr)) throw new Error(`docker network create ${name}: ${r.stderr.trim()}`);
    }
    throw new Error('no free 198.18.0.0/15 /24 for the internet network after 20 attempts');
  }

  private async startContainer(what: string, ip: string, command: readonly string[]): Promise<string> {
    const name = uniqueName(what);
    this.containers.push(name);
    await runOk('docker', [
      'run', '-d', '--name', name, '--label', `${E2E_PID_LABEL}=${process.pid}`, '--network', this.net().name, '--ip', ip,
      '-v', `${this.scriptsDir}:/inet:ro`, PY_IMAGE, ...command,
    ]);
    return name;
  }

  /**
   * An origin at `ip` (on the internet network) listening on `ports`. It waits for the client to
   * speak first (0.3 s, or 5 s with tls) and records the ClientHello's SNI or the HTTP request's Host;
   * it answers `origin-<name>:<port>\n` (as an HTTP body to an HTTP request), and closes a TLS
   * connection without a handshake.
   */
  async startOrigin(name: string, ip: string, ports: number[], options: { tls?: boolean } = {}): Promise<Origin> {
    if (this.origins.has(name)) throw new Error(`origin ${name} already started`);
    if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`origin name ${name}: use [a-z0-9-]`);
    const wait = options.tls ? '5' : '0.3';
    const container = await this.startContainer(`inet-origin-${name}`, ip, ['python3', '-u', '/inet/origin.py', name, wait, ...ports.map(String)]);
    await waitReady(container);
    const origin = { name, container, ip, ports: [...ports] };
    this.origins.set(name, origin);
    return origin;
  }

  /** Every query the resolver answered, oldest first. */
  queries(): Promise<DnsQueryRecord[]> {
    return jsonLogs<DnsQueryRecord>(this.dnsContainer).then((rs) => rs.filter((r) => r.kind === 'query'));
  }

  /** Every connection the origin recorded, oldest first. */
  connections(origin: string): Promise<OriginConnection[]> {
    const o = this.origins.get(origin);
    if (!o) throw new Error(`no origin ${origin}`);
    return jsonLogs<OriginConnection>(o.container).then((rs) => rs.filter((r) => r.kind === 'conn'));
  }

  waitForQuery(predicate: (q: DnsQueryRecord) => boolean, what = 'matching query', timeoutMs = 5_000): Promise<DnsQueryRecord> {
    return waitFor(() => this.queries(), predicate, `DNS query (${what})`, timeoutMs);
  }

  waitForConnection(origin: string, predicate: (c: OriginConnection) => boolean, what = 'matching connection', timeoutMs = 5_000): Promise<OriginConnection> {
    return waitFor(() => this.connections(origin), predicate, `connection to ${origin} (${what})`, timeoutMs);
  }

  /**
   * Let `subnet` (another Docker network's, e.g. the firewall network's) and the internet reach each
   * other. With preserveSource (the default) Docker does not masquerade that traffic, so origins and
   * the resolver see the real source address (Envoy's .200, CoreDNS's .201, an agent's own).
   * Call it after the other network exists.
   */
  async routeFrom(subnet: string, options: { preserveSource?: boolean } = {}): Promise<void> {
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(subnet)) throw new Error(`routeFrom: ${subnet} is not an IPv4 CIDR`);
    const inet = this.net().subnet;
    const wanted: IptablesRule[] = [
      { table: 'filter', chain: 'DOCKER-USER', spec: ruleSpec(subnet, inet, 'ACCEPT') },
      { table: 'filter', chain: 'DOCKER-USER', spec: ruleSpec(inet, subnet, 'ACCEPT') },
      ...(options.preserveSource === false ? [] : [{ table: 'nat' as const, chain: 'POSTROUTING', spec: ruleSpec(subnet, inet, 'RETURN') }]),
    ];
    for (const rule of wanted) {
      // Remembered before it is made: a failure half-way still gets it removed by stop().
      this.rules.push(rule);
      await iptables(['-t', rule.table, '-I', rule.chain, ...rule.spec]);
    }
  }

  /** The iptables rules this internet holds right now, as `-t table chain spec…` strings (for tests). */
  get routes(): string[] {
    return this.rules.map((r) => `-t ${r.table} ${r.chain} ${r.spec.join(' ')}`);
  }

  /** Remove everything: origins, resolver, iptables rules, network, scripts. Returns what could not be removed. */
  async stop(): Promise<string[]> {
    const errors: string[] = [];
    for (const name of this.containers.splice(0).reverse()) {
      try {
        await removeContainer(name);
      } catch (e) {
        errors.push(`remove ${name}: ${(e as Error).message}`);
      }
    }
    this.origins.clear();
    for (const rule of this.rules.splice(0).reverse()) {
      const r = await run('iptables', ['-w', '5', '-t', rule.table, '-D', rule.chain, ...rule.spec], IPTABLES_TIMEOUT_MS).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message }));
      // A rule never made (its -I failed) is not there to delete.
      if (r.code !== 0 && !/does a matching rule exist|No chain\/target\/match|Bad rule/i.test(r.stderr)) {
        errors.push(`iptables -t ${rule.table} -D ${rule.chain} ${rule.spec.join(' ')}: ${r.stderr.trim()}`);
      }
    }
    if (this.network) {
      const r = await run('docker', ['network', 'rm', this.network.name]);
      if (r.code !== 0 && !/not found/i.test(r.stderr)) errors.push(`docker network rm ${this.network.name}: ${r.stderr.trim()}`);
    }
    rmSync(this.scriptsDir, { recursive: true, force: true });
    return errors;
  }
}

/** Remove the iptables rules of killed runs (their containers and networks: sweepStale, sweepStaleNetworks). */
export async function sweepStaleInternetRoutes(): Promise<void> {
  for (const [table, chain] of [['filter', 'DOCKER-USER'], ['nat', 'POSTROUTING']] as const) {
    const listed = await run('iptables', ['-w', '5', '-t', table, '-S', chain], IPTABLES_TIMEOUT_MS);
    if (listed.code !== 0) continue; // no DOCKER-USER chain: nothing of ours either
    for (const line of listed.stdout.split('\n')) {
      const tag = new RegExp(`--comment "?${RULE_TAG}:pid=(\\d+)"?`).exec(line);
      const src = /-s (\S+)/.exec(line);
      const dst = /-d (\S+)/.exec(line);
      const target = /-j (\S+)/.exec(line);
      if (!tag || !src || !dst || !target || pidAlive(Number(tag[1]))) continue;
      await run('iptables', ['-w', '5', '-t', table, '-D', chain, ...ruleSpec(src[1]!, dst[1]!, target[1]!, Number(tag[1]))], IPTABLES_TIMEOUT_MS);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The Envoy stand-in
// ---------------------------------------------------------------------------------------------

/** Where the control plane mounts the rendered Envoy directory, and the command it gives Envoy. */
export const ENVOY_CONFIG_DIR = '/etc/envoy/clawker';
export const ENVOY_COMMAND: readonly string[] = ['envoy', '-c', `${ENVOY_CONFIG_DIR}/envoy.yaml`];

const ENVOY_DOCKERFILE = [
  `FROM ${PY_IMAGE}`,
  // YAML, to read the bootstrap the way Envoy does (static health listener, watched file paths).
  'RUN apt-get update && apt-get install -y --no-install-recommends python3-yaml && rm -rf /var/lib/apt/lists/*',
  'COPY envoy /usr/local/bin/envoy',
  '',
].join('\n');

/** The image tag names its files, so a changed stand-in is a new image and an unchanged one is reused. */
export const ENVOY_STANDIN_IMAGE = `clawker-e2e/envoy-standin:${createHash('sha256').update(ENVOY_DOCKERFILE).update('\0').update(ENVOY_PY).digest('hex').slice(0, 12)}`;

/** Build the stand-in image unless present; returns its tag. */
export async function ensureEnvoyStandinImage(): Promise<string> {
  if ((await run('docker', ['image', 'inspect', '--format', '{{.Id}}', ENVOY_STANDIN_IMAGE])).code === 0) return ENVOY_STANDIN_IMAGE;
  await ensurePythonImage();
  const dir = mkdtempSync(join(tmpdir(), 'clawker-e2e-envoy-standin-'));
  try {
    writeFileSync(join(dir, 'Dockerfile'), ENVOY_DOCKERFILE);
    writeFileSync(join(dir, 'envoy'), ENVOY_PY, { mode: 0o755 });
    await runOk('docker', ['build', '-q', '-t', ENVOY_STANDIN_IMAGE, dir], 600_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return ENVOY_STANDIN_IMAGE;
}

/** The stand-in's own records (stdout lines with a `kind`), oldest first. */
export async function envoyRecords(containerName: string): Promise<EnvoyRecord[]> {
  return (await jsonLogs<EnvoyRecord>(containerName)).filter((r) => typeof r.kind === 'string');
}

/**
 * The access-log lines the stand-in wrote, as Envoy would under the rendered configuration: the
 * `json_format` of each HCM's and tcp_proxy's `access_log`, one line per request or TCP connection
 * (none for a connection no filter chain took: the rendered listeners have no listener access log).
 * Values typed as Envoy's JSON formatter types them: numbers for codes and byte counts, null when
 * unset; RESPONSE_FLAGS is "-"; UPSTREAM_HOST is always null (the stand-in connects to no upstream).
 */
export async function envoyAccessLog(containerName: string): Promise<Record<string, unknown>[]> {
  return (await jsonLogs<Record<string, unknown>>(containerName)).filter((r) => !('kind' in r));
}

/** The raw stdout lines of the stand-in (what a log follower such as the control plane reads). */
export async function envoyStdout(containerName: string): Promise<string[]> {
  return (await runOk('docker', ['logs', containerName])).split('\n').filter(Boolean);
}

export function waitForEnvoyRecord(containerName: string, predicate: (r: EnvoyRecord) => boolean, what = 'matching record', timeoutMs = 5_000): Promise<EnvoyRecord> {
  return waitFor(() => envoyRecords(containerName), predicate, `Envoy stand-in record (${what})`, timeoutMs);
}

/**
 * Write the `envoy/…` entries of renderAll's files into `dir` (the directory mounted at
 * /etc/envoy/clawker), each by a rename so that the stand-in never reads half a file.
 */
export function writeEnvoyDir(files: ReadonlyMap<string, string>, dir: string): void {
  for (const [path, content] of files) {
    if (!path.startsWith('envoy/')) continue;
    const target = join(dir, path.slice('envoy/'.length));
    mkdirSync(dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${process.pid}`;
    writeFileSync(tmp, content, { mode: path.endsWith('.pem') ? 0o600 : 0o644 });
    renameSync(tmp, target);
  }
}

/**
 * Start the stand-in the way the control plane starts Envoy (for suites that test without the control
 * plane): ENVOY_COMMAND, the config directory read-only at /etc/envoy/clawker, no capabilities,
 * no-new-privileges, read-only root file system. Resolves when it listens; returns the container name.
 */
export async function startEnvoyStandin(options: { network: string; ip: string; configDir: string; name?: string }): Promise<string> {
  const image = await ensureEnvoyStandinImage();
  const name = options.name ?? uniqueName('envoy-standin');
  await runOk('docker', [
    'run', '-d', '--name', name, '--label', `${E2E_PID_LABEL}=${process.pid}`,
    '--network', options.network, '--ip', options.ip,
    '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--read-only',
    '-v', `${options.configDir}:${ENVOY_CONFIG_DIR}:ro`,
    image, ...ENVOY_COMMAND,
  ]);
  await waitReady(name);
  return name;
}
