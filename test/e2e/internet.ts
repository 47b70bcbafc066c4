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
 * Origins: `startOrigin` (records what arrives, answers a banner, no real TLS) and `startGitOrigin`
 * (a real HTTPS git server behind Basic auth, its certificate signed by the internet's test CA,
 * `testCaPem`; its name answered by the resolver).
 *
 * The Envoy stand-in: Envoy cannot run on the test bed (no registry), so an image whose
 * `/usr/local/bin/envoy` is a Python program (ENVOY_PY) takes its place. The control plane starts it
 * exactly as it starts the real Envoy; it listens where the rendered lds.json says, picks filter
 * chains the way Envoy does (SNI, transport protocol), and records every connection. The default
 * image (ensureEnvoyStandinImage) answers allowed traffic itself; `TestInternet.forwardingEnvoyImage()`
 * is the same program told to forward it to the real upstream, resolving with this internet's
 * resolver and trusting its test CA (added to the image's system bundle, the file the rendered
 * upstream TLS context names). The control plane gives Envoy no settings but its config directory,
 * so the mode, the resolver and the CA travel in the image.
 *
 * Everything is labelled with the test process's pid (containers, network) or carries it in an
 * iptables comment, so a killed run's leftovers are swept: sweepStale (testbed.ts),
 * sweepStaleNetworks (datapath-testbed.ts), sweepStaleInternetRoutes (here).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BACKDATE_MS, type CertificateAuthority, wholeSeconds } from '../../src/core/pki/authority';
import { createLeafKey, issueDomainCertificate } from '../../src/core/pki/domainCertificate';
import { generateP256KeyPair, privateKeyPem } from '../../src/core/pki/keys';
import { certificatePem, encodeName, keyIdentifier, octetString, randomSerialNumber, signCertificate } from '../../src/core/pki/x509';
import { ensurePythonImage, PY_IMAGE } from './datapath-testbed';
import { DNS_PY, ENVOY_PY, GIT_ORIGIN_PY, ORIGIN_PY } from './internet-scripts';
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

/** One HTTP request a git origin answered. */
export interface GitRequestRecord {
  kind: 'request';
  origin: string;
  method: string;
  /** Without the query. */
  path: string;
  query?: string;
  peer: string;
  peerPort: number;
  sni?: string;
  host?: string;
  /** Authorization: none; Basic with the right user and password; anything else. */
  auth: 'none' | 'ok' | 'wrong';
  /** The user name presented (never the password). */
  user?: string;
  gitProtocol?: string;
  userAgent?: string;
  status: number;
}

export interface GitOriginOptions {
  /** The DNS name the origin serves and the resolver answers, e.g. `git.test`. */
  name: string;
  user: string;
  password: string;
  /** The repository, served at `/<repo>.git` (a trailing `.git` is allowed and dropped). */
  repo: string;
  /** Path (relative, `/`-separated) → content: the single commit of branch main. */
  files: Record<string, string>;
  /** Its address on the internet network: an IPv4 address or a host number; default a free one from .150. */
  ip?: string | number;
}

export interface GitOrigin {
  name: string;
  container: string;
  ip: string;
  port: 443;
  repo: string;
  user: string;
  /** `https://<name>/<repo>.git` (no credentials). */
  url: string;
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
  /** Forwarding: the `name:port` it went to (HTTP: the Host, TCP: the cluster's endpoint). */
  upstreamHost?: string;
  /** Forwarding: the address it connected to, `ip:port`. Absent: it did not get there (upstreamError). */
  forwarded?: string;
  /** Forwarding: the SNI it sent upstream (TLS). */
  upstreamSni?: string;
  /** Forwarding: why the upstream could not be had (DNS, connect, TLS verification) or gave no response. */
  upstreamError?: string;
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
  /** HTTP: the status answered; when forwarded, the upstream's first response's status. */
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

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The internet's own CA: signs the origins' certificates. A name of its own (not the firewall CA's),
 * so a trust store or an error message never confuses the two.
 */
export function createTestCa(now: Date = new Date()): CertificateAuthority {
  const keyPair = generateP256KeyPair();
  const subject = encodeName({ commonName: 'Clawker E2E Test Internet CA', organization: 'Clawker e2e' });
  const subjectPublicKeyInfo = keyPair.publicKey.export({ type: 'spki', format: 'der' });
  const ski = keyIdentifier(subjectPublicKeyInfo);
  const notAfter = wholeSeconds(new Date(now.getTime() + 30 * DAY_MS));
  const der = signCertificate(
    {
      serialNumber: randomSerialNumber(),
      issuer: subject,
      subject,
      notBefore: wholeSeconds(new Date(now.getTime() - BACKDATE_MS)),
      notAfter,
      subjectPublicKeyInfo,
      extensions: [
        { name: 'basicConstraints', critical: true, cA: true, pathLenConstraint: 0 },
        { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true },
        { name: 'subjectKeyIdentifier', value: octetString(ski) },
      ],
    },
    keyPair.privateKey,
  );
  return { certificatePem: certificatePem(der), certificate: new X509Certificate(der), privateKey: keyPair.privateKey, subject, keyIdentifier: ski, notAfter };
}

/** `docker build` of a directory made of `files` (Dockerfile included), unless the tag exists. */
async function buildImage(tag: string, files: Record<string, string>, labels: Record<string, string> = {}): Promise<string> {
  if ((await run('docker', ['image', 'inspect', '--format', '{{.Id}}', tag])).code === 0) return tag;
  const dir = mkdtempSync(join(tmpdir(), 'clawker-e2e-image-'));
  try {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content, { mode: name === 'envoy' ? 0o755 : 0o644 });
    await runOk('docker', ['build', '-q', ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]), '-t', tag, dir], 600_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return tag;
}

const GIT_DOCKERFILE = [
  `FROM ${PY_IMAGE}`,
  'RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates && rm -rf /var/lib/apt/lists/*',
  '',
].join('\n');

/** The test's Python image plus git and the system CA bundle: the git origins, and clients that clone. */
export const GIT_IMAGE = `clawker-e2e/git:${createHash('sha256').update(GIT_DOCKERFILE).digest('hex').slice(0, 12)}`;

export async function ensureGitImage(): Promise<string> {
  await ensurePythonImage();
  return buildImage(GIT_IMAGE, { Dockerfile: GIT_DOCKERFILE });
}

/** Repository of the forwarding stand-in images; each carries the building run's pid (E2E_PID_LABEL). */
const FORWARDING_REPOSITORY = 'clawker-e2e/envoy-standin-fwd';

/** Remove forwarding stand-in images of killed runs. */
async function sweepStaleForwardingImages(): Promise<void> {
  const listed = await run('docker', ['image', 'ls', FORWARDING_REPOSITORY, '--format', '{{.Repository}}:{{.Tag}}']);
  for (const tag of listed.stdout.split('\n').filter(Boolean)) {
    const pid = (await run('docker', ['image', 'inspect', '--format', `{{index .Config.Labels "${E2E_PID_LABEL}"}}`, tag])).stdout.trim();
    if (/^\d+$/.test(pid) && !pidAlive(Number(pid))) await run('docker', ['image', 'rm', tag]);
  }
}

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

export class TestInternet {
  network: InternetNetwork | undefined;
  readonly scriptsDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-inet-'));
  private dnsContainer = '';
  private readonly origins = new Map<string, Origin>();
  private readonly gitOrigins = new Map<string, GitOrigin>();
  private readonly containers: string[] = [];
  private readonly rules: IptablesRule[] = [];
  private readonly images: string[] = [];
  /** The zone the test set (setZone), and the names the internet's own origins add to it. */
  private zone: Record<string, string> = {};
  private readonly originNames: Record<string, string> = {};
  private ca: CertificateAuthority | undefined;
  private forwardingImage: Promise<string> | undefined;

  /** The CA that signs the origins' certificates (created on first use; valid 30 days). */
  get testCa(): CertificateAuthority {
    this.ca ??= createTestCa();
    return this.ca;
  }

  /** The test CA's certificate: what a client (or the stand-in, see forwardingEnvoyImage) trusts. */
  get testCaPem(): string {
    return this.testCa.certificatePem;
  }

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
    await sweepStaleForwardingImages();
    writeFileSync(join(this.scriptsDir, 'dns.py'), DNS_PY);
    writeFileSync(join(this.scriptsDir, 'origin.py'), ORIGIN_PY);
    this.network = await this.createNetwork();
    this.setZone(zone);
    this.dnsContainer = await this.startContainer('inet-dns', this.dnsIp, ['python3', '-u', '/inet/dns.py', '/inet/zone.json']);
    await waitReady(this.dnsContainer);
  }

  /**
   * Replace the resolver's zone (it re-reads the file on its next query). The names of git origins
   * (startGitOrigin) stay in it unless `zone` names them too.
   */
  setZone(zone: Zone): void {
    const resolved: Record<string, string> = {};
    for (const [name, value] of Object.entries(zone)) {
      const ip = typeof value === 'number' ? this.address(value) : value;
      if (!/^(\*\.)?[a-z0-9.-]+$/i.test(name) || !/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) throw new Error(`zone entry ${name} → ${ip} is not a name and an IPv4 address`);
      resolved[name.toLowerCase()] = ip;
    }
    this.zone = resolved;
    this.writeZone();
  }

  private writeZone(): void {
    const tmp = join(this.scriptsDir, 'zone.json.tmp');
    writeFileSync(tmp, JSON.stringify({ ...this.originNames, ...this.zone }));
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

  private async startContainer(what: string, ip: string, command: readonly string[], image = PY_IMAGE): Promise<string> {
    const name = uniqueName(what);
    this.containers.push(name);
    await runOk('docker', [
      'run', '-d', '--name', name, '--label', `${E2E_PID_LABEL}=${process.pid}`, '--network', this.net().name, '--ip', ip,
      '-v', `${this.scriptsDir}:/inet:ro`, image, ...command,
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

  /**
   * An HTTPS git server at `name` (port 443): the resolver answers `name` with its address; its
   * certificate (for `name`) is signed by the test CA (testCaPem); every request needs HTTP Basic auth
   * with `user`/`password` (else 401 with `WWW-Authenticate: Basic`, so git asks its credential
   * helper), then `git http-backend` serves one bare repository, `/<repo>.git`, whose branch main has
   * one commit of `files`. Clone with `git clone https://user:password@name/repo.git` trusting the
   * test CA (GIT_SSL_CAINFO). Its requests: gitRequests / waitForGitRequest.
   */
  async startGitOrigin(opts: GitOriginOptions): Promise<GitOrigin> {
    const name = opts.name.toLowerCase();
    const repo = opts.repo.replace(/\.git$/, '');
    if (!DNS_NAME.test(name)) throw new Error(`git origin name ${opts.name}: not a DNS name`);
    if (this.gitOrigins.has(name)) throw new Error(`git origin ${name} already started`);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(repo)) throw new Error(`repo ${opts.repo}: use [A-Za-z0-9._-]`);
    if (!opts.user || opts.user.includes(':')) throw new Error('user: not empty, no colon (HTTP Basic)');
    if (Object.keys(opts.files).length === 0) throw new Error('files: a repository needs at least one file');
    for (const path of Object.keys(opts.files)) {
      const normal = posix.normalize(path);
      if (normal !== path || path.startsWith('/') || path.startsWith('../') || path === '..' || path.split('/').includes('.git')) throw new Error(`file ${path}: a relative path, normalised, outside .git`);
    }
    const ip = opts.ip === undefined ? this.freeAddress() : typeof opts.ip === 'number' ? this.address(opts.ip) : opts.ip;
    const leafKey = createLeafKey();
    const slug = name.replace(/[^a-z0-9]+/g, '-');
    writeFileSync(join(this.scriptsDir, `git-${slug}-cert.pem`), issueDomainCertificate(this.testCa, leafKey, name));
    writeFileSync(join(this.scriptsDir, `git-${slug}-key.pem`), privateKeyPem(leafKey.privateKey), { mode: 0o600 });
    writeFileSync(
      join(this.scriptsDir, `git-${slug}.json`),
      JSON.stringify({ name, user: opts.user, password: opts.password, repo, files: opts.files, cert: `/inet/git-${slug}-cert.pem`, key: `/inet/git-${slug}-key.pem` }),
      { mode: 0o600 },
    );
    writeFileSync(join(this.scriptsDir, 'git-origin.py'), GIT_ORIGIN_PY);
    const image = await ensureGitImage();
    const container = await this.startContainer(`inet-git-${slug}`, ip, ['python3', '-u', '/inet/git-origin.py', `/inet/git-${slug}.json`], image);
    await waitReady(container, 30_000);
    const origin: GitOrigin = { name, container, ip, port: 443, repo, user: opts.user, url: `https://${name}/${repo}.git` };
    this.gitOrigins.set(name, origin);
    this.originNames[name] = ip;
    this.writeZone();
    return origin;
  }

  /** The first address from .150 up that no origin holds and the zone does not name. */
  private freeAddress(): string {
    const taken = new Set([...[...this.origins.values(), ...this.gitOrigins.values()].map((o) => o.ip), ...Object.values(this.zone)]);
    for (let host = 150; host < 250; host++) if (!taken.has(this.address(host))) return this.address(host);
    throw new Error('no free address from .150 to .249 on the internet network');
  }

  /** Every request the git origin answered, oldest first. */
  gitRequests(name: string): Promise<GitRequestRecord[]> {
    const o = this.gitOrigins.get(name.toLowerCase());
    if (!o) throw new Error(`no git origin ${name}`);
    return jsonLogs<GitRequestRecord>(o.container).then((rs) => rs.filter((r) => r.kind === 'request'));
  }

  waitForGitRequest(name: string, predicate: (r: GitRequestRecord) => boolean, what = 'matching request', timeoutMs = 5_000): Promise<GitRequestRecord> {
    return waitFor(() => this.gitRequests(name), predicate, `request to ${name} (${what})`, timeoutMs);
  }

  /**
   * The Envoy stand-in image that forwards allowed traffic to the real upstream (see ENVOY_PY):
   * the default stand-in plus this internet's test CA in its system CA bundle (the `trusted_ca` of
   * the rendered upstream TLS context) and this internet's resolver for the upstream names. Give it
   * to the control plane as CLAWKER_ENVOY_IMAGE, or to startEnvoyStandin. Built once per internet
   * (the CA is the internet's own), removed by stop(), and by a later start() if the run was killed.
   */
  forwardingEnvoyImage(): Promise<string> {
    this.forwardingImage ??= (async () => {
      const base = await ensureEnvoyStandinImage();
      const dockerfile = [
        `FROM ${base}`,
        'COPY test-internet-ca.crt /usr/local/share/ca-certificates/clawker-e2e-test-internet-ca.crt',
        'RUN update-ca-certificates',
        `ENV CLAWKER_STANDIN_FORWARD=1 CLAWKER_STANDIN_RESOLVER=${this.dnsIp}`,
        '',
      ].join('\n');
      const tag = `${FORWARDING_REPOSITORY}:${createHash('sha256').update(dockerfile).update('\0').update(this.testCaPem).digest('hex').slice(0, 12)}`;
      this.images.push(tag);
      return buildImage(tag, { Dockerfile: dockerfile, 'test-internet-ca.crt': this.testCaPem }, { [E2E_PID_LABEL]: String(process.pid) });
    })();
    return this.forwardingImage;
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

  /**
   * Remove everything: origins, resolver, the forwarding stand-in image, iptables rules, network,
   * scripts. Returns what could not be removed. (Remove containers of the forwarding image first.)
   */
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
    this.gitOrigins.clear();
    for (const image of this.images.splice(0)) {
      const r = await run('docker', ['image', 'rm', image]);
      if (r.code !== 0 && !/No such image/i.test(r.stderr)) errors.push(`docker image rm ${image}: ${r.stderr.trim()}`);
    }
    this.forwardingImage = undefined;
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
  // YAML, to read the bootstrap the way Envoy does (static health listener, watched file paths);
  // the system CA bundle the rendered upstream TLS context names, as the Envoy image has it.
  'RUN apt-get update && apt-get install -y --no-install-recommends python3-yaml ca-certificates && rm -rf /var/lib/apt/lists/*',
  'COPY envoy /usr/local/bin/envoy',
  '',
].join('\n');

/** The image tag names its files, so a changed stand-in is a new image and an unchanged one is reused. */
export const ENVOY_STANDIN_IMAGE = `clawker-e2e/envoy-standin:${createHash('sha256').update(ENVOY_DOCKERFILE).update('\0').update(ENVOY_PY).digest('hex').slice(0, 12)}`;

/** Build the stand-in image unless present; returns its tag. */
export async function ensureEnvoyStandinImage(): Promise<string> {
  if ((await run('docker', ['image', 'inspect', '--format', '{{.Id}}', ENVOY_STANDIN_IMAGE])).code === 0) return ENVOY_STANDIN_IMAGE;
  await ensurePythonImage();
  return buildImage(ENVOY_STANDIN_IMAGE, { Dockerfile: ENVOY_DOCKERFILE, envoy: ENVOY_PY });
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
 * unset; RESPONSE_FLAGS is "-"; UPSTREAM_HOST is null unless the stand-in forwards (then the
 * address it connected to; a forwarded connection's line is written when the connection ends, with
 * the first response's status).
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
 * `image`: another stand-in image (TestInternet.forwardingEnvoyImage); default the answering one.
 */
export async function startEnvoyStandin(options: { network: string; ip: string; configDir: string; name?: string; image?: string }): Promise<string> {
  const image = options.image ?? (await ensureEnvoyStandinImage());
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
