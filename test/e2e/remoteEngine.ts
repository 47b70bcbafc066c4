/**
 * A second Docker engine that stands in for Docker Desktop or a remote host (TESTBED.md): dockerd in
 * a container with its own cgroup namespace, bpffs, data root and network namespace, its API on
 * TCP with mutual TLS, `--host-gateway-ip` pointing at this machine (the outer bridge's gateway) so
 * its containers reach the host as they would on Docker Desktop. Its file system is its own: of
 * this machine it sees only the folders a test shares into it, at the same path (the way Docker
 * Desktop shares the user's home). Images arrive by `docker save | docker load` (no registry here).
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BASE_IMAGE, E2E_PID_LABEL, run, runOk } from './testbed';

const START_SH = `#!/bin/sh
# The engine's own view of the kernel: writable sysfs and cgroup v1 mounts, cgroup v2 beside them
# (hybrid, as on the outer machine), bpffs; then dockerd on its socket and on TCP with TLS.
set -eu
mount -o remount,rw /sys
awk '$3 == "cgroup" { print $2 }' /proc/mounts | while read -r m; do mount -o remount,bind,rw "$m" || true; done
mkdir -p /sys/fs/cgroup/unified
mountpoint -q /sys/fs/cgroup/unified || mount -t cgroup2 none /sys/fs/cgroup/unified
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
exec dockerd --host unix:///var/run/docker.sock --host tcp://0.0.0.0:2376 \\
  --tlsverify --tlscacert /certs/ca.pem --tlscert /certs/server-cert.pem --tlskey /certs/server-key.pem \\
  --host-gateway-ip "$HOST_GATEWAY_IP" --exec-opt native.cgroupdriver=cgroupfs
`;
const DOCKERFILE = `FROM ${BASE_IMAGE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io iproute2 util-linux mawk ca-certificates && rm -rf /var/lib/apt/lists/*
COPY start.sh /usr/local/bin/start-dockerd
RUN chmod 0755 /usr/local/bin/start-dockerd
ENTRYPOINT ["/usr/local/bin/start-dockerd"]
`;
/** The tag names its inputs: a changed start script or Dockerfile is a new image. */
export const DIND_IMAGE = `clawker-e2e/dind:${createHash('sha256').update(DOCKERFILE).update(START_SH).digest('hex').slice(0, 12)}`;

export async function ensureDindImage(): Promise<void> {
  if ((await run('docker', ['image', 'inspect', '--format', '{{.Id}}', DIND_IMAGE])).code === 0) return;
  const dir = mkdtempSync(join(tmpdir(), 'clawker-e2e-dind-image-'));
  try {
    writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE);
    writeFileSync(join(dir, 'start.sh'), START_SH);
    await runOk('docker', ['build', '-q', '-t', DIND_IMAGE, dir], 900_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A CA, a server certificate for `ip`, a client certificate: what DOCKER_CERT_PATH and dockerd --tls* read. */
async function makeCertificates(dir: string, ip: string): Promise<{ server: string; client: string }> {
  const server = join(dir, 'server');
  const client = join(dir, 'client');
  mkdirSync(server, { recursive: true, mode: 0o700 });
  mkdirSync(client, { recursive: true, mode: 0o700 });
  const ssl = (...args: string[]) => runOk('openssl', args, 60_000);
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca-key.pem');
  await ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=clawker-e2e-dind-ca', '-keyout', caKey, '-out', ca);
  const leaf = async (out: string, cn: string, ext: string) => {
    const ext_ = join(dir, `${cn}.ext`);
    writeFileSync(ext_, ext);
    await ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${cn}`, '-keyout', join(out, 'key.pem'), '-out', join(dir, `${cn}.csr`));
    await ssl('x509', '-req', '-in', join(dir, `${cn}.csr`), '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-days', '2', '-extfile', ext_, '-out', join(out, 'cert.pem'));
  };
  await leaf(server, 'dind-server', `subjectAltName=IP:${ip}\nextendedKeyUsage=serverAuth\n`);
  await leaf(client, 'dind-client', 'extendedKeyUsage=clientAuth\n');
  for (const d of [server, client]) writeFileSync(join(d, 'ca.pem'), await runOk('cat', [ca]));
  // dockerd's names for them
  await runOk('cp', [join(server, 'cert.pem'), join(server, 'server-cert.pem')]);
  await runOk('cp', [join(server, 'key.pem'), join(server, 'server-key.pem')]);
  return { server, client };
}

export interface RemoteEngine {
  readonly container: string;
  /** `tcp://IP:2376`. */
  readonly host: string;
  /** DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem of a client. */
  readonly certPath: string;
  /** The dockerd's TLS material on this machine (mounted into the engine's container, read-only). */
  readonly serverCertDir: string;
  /** What host.docker.internal is in its containers: this machine's address on the engine's network. */
  readonly hostGatewayIp: string;
  /** DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH for it. */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Starts the engine, sharing `shared` folders at the same path, and waits for its TLS API. The
 * container is labelled with the run's pid, so a killed run's engine is found and removed.
 */
export async function startRemoteEngine(name: string, shared: readonly string[]): Promise<RemoteEngine> {
  const work = mkdtempSync(join(tmpdir(), 'clawker-e2e-dind-'));
  const volume = `${name}-data`;
  // Its own network, so its address (in its certificate) and this machine's address on it (its
  // host-gateway) are known before it starts.
  const network = `${name}-net`;
  let prefix = '';
  for (let attempt = 0; attempt < 20 && !prefix; attempt++) {
    const p = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}`;
    const r = await run('docker', ['network', 'create', '--label', `${E2E_PID_LABEL}=${process.pid}`, '--subnet', `${p}.0/24`, '--gateway', `${p}.1`, network]);
    if (r.code === 0) prefix = p;
    else if (!/overlap/i.test(r.stderr)) throw new Error(`docker network create ${network}: ${r.stderr.trim()}`);
  }
  if (!prefix) throw new Error('no free 10.x.y.0/24 subnet for the remote engine after 20 attempts');
  const ip = `${prefix}.2`;
  const hostGatewayIp = `${prefix}.1`;
  const { client } = await makeCertificates(work, ip);
  await runOk('docker', [
    'run', '-d', '--name', name, '--label', `${E2E_PID_LABEL}=${process.pid}`,
    '--network', network, '--ip', ip,
    '--cap-add', 'ALL', '--cap-drop', 'SYS_RESOURCE',
    '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined', '--security-opt', 'systempaths=unconfined',
    '--cgroupns=private', '-v', `${volume}:/var/lib/docker`, '-v', `${work}/server:/certs:ro`,
    ...shared.flatMap((p) => ['-v', `${p}:${p}`]),
    '-e', `HOST_GATEWAY_IP=${hostGatewayIp}`,
    DIND_IMAGE,
  ]);
  const host = `tcp://${ip}:2376`;
  const env = { DOCKER_HOST: host, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: client };
  const deadline = Date.now() + 90_000;
  for (;;) {
    const r = await runWithEnv('docker', ['version', '--format', '{{.Server.Version}}'], env);
    if (r.code === 0) break;
    if (Date.now() > deadline) throw new Error(`the remote engine ${name} did not answer on ${host}: ${r.stderr}\n${(await run('docker', ['logs', '--tail', '30', name])).stderr}`);
    await sleep(500);
  }
  return {
    container: name,
    host,
    certPath: client,
    serverCertDir: join(work, 'server'),
    hostGatewayIp,
    env,
    async stop() {
      await run('docker', ['rm', '-f', name]);
      await run('docker', ['volume', 'rm', '-f', volume]);
      await run('docker', ['network', 'rm', network]);
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** A command with extra environment (the remote engine's DOCKER_* variables). */
export function runWithEnv(file: string, args: readonly string[], env: Record<string, string>, timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

/** Copies images of this machine's engine into the remote one (`docker save | docker load`). */
export async function copyImages(engine: RemoteEngine, images: readonly string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const save = spawn('docker', ['save', ...images], { stdio: ['ignore', 'pipe', 'pipe'] });
    const load = spawn('docker', ['load', '-q'], { env: { ...process.env, ...engine.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    save.stderr.on('data', (c: Buffer) => (err += c.toString()));
    load.stderr.on('data', (c: Buffer) => (err += c.toString()));
    save.stdout.pipe(load.stdin);
    load.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker save | docker load into ${engine.host}: ${err}`))));
  });
}
