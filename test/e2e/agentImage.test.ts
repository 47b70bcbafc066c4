/**
 * The agent image built by src/platform/docker/agentImage.ts on the test bed's base image (Debian
 * bookworm without Node: Debian's nodejs and npm are installed), under a tag of its own:
 * Claude Code runs, the firewall CA is trusted system-wide (curl, git, Python, OpenSSL) and by Node,
 * the user, directories and git configuration are those of the agent contract, the tools reach a
 * host proxy (the real server, with stub git and browser), agentd starts a command as the agent user,
 * an unchanged image is not rebuilt, and a rotated CA is reported until a rebuild is asked for.
 *
 * The build's sources are copied to a temporary installation first, so that a concurrent
 * `npm run build` (other suites, other work) cannot change the inputs between two checks.
 *
 * The test bed's network intercepts TLS with its own CA, which this machine's Node trusts through
 * NODE_EXTRA_CA_CERTS: the builder passes that (for want of CLAWKER_BUILD_CA_FILE) to the npm
 * download inside the build.
 */
import Docker from 'dockerode';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  AGENT_GID,
  AGENT_PROMPT_FILE,
  AGENT_UID,
  AGENTD_BUNDLE,
  AGENTD_NATIVE,
  HOST_PROXY_TOKEN_FILE,
  HOST_PROXY_TOKEN_HEADER,
  IMAGE_CA_FILE,
  SUPERVISOR_STRIPPED_ENV,
  SYSTEM_CA_BUNDLE,
} from '../../src/core/agents/agentContract';
import { createCertificateAuthority } from '../../src/core/pki/authority';
import { createLeafKey, issueDomainCertificate } from '../../src/core/pki/domainCertificate';
import { privateKeyPem } from '../../src/core/pki/keys';
import { createHostProxyServer } from '../../src/hostproxy/server';
import { hostProxyToken } from '../../src/hostproxy/token';
import type { CredentialFields, GitOperation } from '../../src/hostproxy/validate';
import { loadOrCreateCa, rotateCa } from '../../src/platform/caStore';
import { AgentImageBuildError, agentImageStatus, AgentImageStaleCaError, ensureAgentImage } from '../../src/platform/docker/agentImage';
import { BASE_IMAGE, E2E_PID_LABEL, requireTestbed, ROOT, run, runOk } from './testbed';
import { INSTALLED_SOURCES } from '../../src/core/agents/agentImageInputs';

const docker = new Docker();
const TAG = `clawker-e2e/agent:${process.pid}`;
const work = mkdtempSync(join(tmpdir(), 'clawker-e2e-agent-image-'));
const dataDir = join(work, 'data');
const installation = join(work, 'installation');
const caDir = join(dataDir, 'firewall', 'ca');
const TLS_NAME = 'tls.clawker-e2e.test';
const BUILD_TIMEOUT_MS = 30 * 60_000;

const options = () => ({
  dataDir,
  baseImage: BASE_IMAGE,
  tag: TAG,
  installationRoot: installation,
});

const progressLines: string[] = [];
const timings: Record<string, number> = {};

/** Build (or find up to date) the image, logging progress to stderr; returns the result and seconds taken. */
async function ensure(extra: { rebuild?: boolean; signal?: AbortSignal } = {}): Promise<{ built: boolean; seconds: number }> {
  const started = Date.now();
  const result = await ensureAgentImage(docker, {
    ...options(),
    ...extra,
    onProgress: (line) => {
      progressLines.push(line);
      process.stderr.write(`[agent-image] ${line}\n`);
    },
  });
  assert.equal(result.image, TAG);
  return { built: result.built, seconds: (Date.now() - started) / 1000 };
}

/** Runs `sh -c script` in a fresh container of the image (agentd bypassed); resolves with its output. */
async function inImage(script: string, dockerArgs: readonly string[] = []): Promise<string> {
  return runOk('docker', ['run', '--rm', '--label', `${E2E_PID_LABEL}=${process.pid}`, '--entrypoint', 'sh', ...dockerArgs, TAG, '-c', script], 120_000);
}

before(async () => {
  await requireTestbed(['docker daemon', 'base image']);
  await runOk(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], 180_000);
  // A private copy of what the build reads from this checkout.
  for (const path of Object.values(INSTALLED_SOURCES)) {
    cpSync(join(ROOT, path), join(installation, path), { recursive: true });
  }
  mkdirSync(dataDir, { recursive: true });
});

after(async () => {
  await run('docker', ['image', 'rm', '-f', TAG]);
  rmSync(work, { recursive: true, force: true });
  process.stderr.write(`[agent-image] timings (s): ${JSON.stringify(timings)}\n`);
});

test('a missing base image that cannot be pulled fails with what to do', { timeout: 120_000 }, async () => {
  await assert.rejects(
    ensureAgentImage(docker, { ...options(), baseImage: 'clawker-e2e/no-such-base:1', tag: `${TAG}-nobase` }),
    (e: Error) => e instanceof AgentImageBuildError && /clawker-e2e\/no-such-base:1/.test(e.message) && /CLAWKER_BASE_IMAGE/.test(e.message),
  );
});

test('a failing build names the failing step and ends with its output', { timeout: BUILD_TIMEOUT_MS }, async () => {
  const broken = join(work, 'broken');
  cpSync(installation, broken, { recursive: true });
  writeFileSync(join(broken, 'src', 'agentd', 'native', 'agentd_proc.c'), 'this is not C;\n');
  await assert.rejects(ensureAgentImage(docker, { ...options(), installationRoot: broken, tag: `${TAG}-broken` }), (e: Error) => {
    assert.ok(e instanceof AgentImageBuildError, `${e.name}: ${e.message}`);
    assert.match(e.message, /^Building clawker-e2e\/agent:\d+-broken failed at step \d+\/\d+ \(RUN NODE_API_HEADERS=\/headers bash \/build\/native\/build\.sh/);
    assert.match(e.message, /returned a non-zero code/);
    assert.match(e.message, /\| .*agentd_proc\.c:1:.*error/);
    return true;
  });
  assert.equal((await run('docker', ['image', 'inspect', `${TAG}-broken`])).code, 1, 'no image tagged');
});

test('the first ensureAgentImage builds the image, with step progress and both labels', { timeout: BUILD_TIMEOUT_MS }, async () => {
  const before = await agentImageStatus(docker, options());
  assert.deepEqual([before.exists, before.upToDate], [false, false]);
  const { built, seconds } = await ensure();
  timings.first = seconds;
  assert.equal(built, true);
  assert.ok(progressLines.some((l) => /^Step \d+\/\d+ : FROM /.test(l)), 'Step N/M progress lines');
  const status = await agentImageStatus(docker, options());
  const pki = await loadOrCreateCa(caDir);
  assert.equal(status.exists, true);
  assert.equal(status.upToDate, true);
  assert.equal(status.staleCa, false);
  assert.equal(status.caFingerprint, pki.ca.certificate.fingerprint256);
  const labels = (await docker.getImage(TAG).inspect()).Config.Labels ?? {};
  assert.match(labels['dev.clawker.build.inputs'] ?? '', /^[0-9a-f]{64}$/);
  assert.equal(labels['dev.clawker.ca.fingerprint'], pki.ca.certificate.fingerprint256);
});

test('a second ensureAgentImage with nothing changed does not build', { timeout: 120_000 }, async () => {
  const { built, seconds } = await ensure();
  timings.unchanged = seconds;
  assert.equal(built, false);
  assert.ok(seconds < 10, `took ${seconds} s`);
});

test('the image configuration: entrypoint agentd, command claude, root, /workspace, the CA variables', async () => {
  const config = (await docker.getImage(TAG).inspect()).Config;
  // env(1) strips what would make root's Node or the loader run code first, then execs node: PID 1 is agentd.
  assert.deepEqual(config.Entrypoint, ['/usr/bin/env', ...SUPERVISOR_STRIPPED_ENV.flatMap((v) => ['-u', v]), 'node', AGENTD_BUNDLE, '--']);
  assert.deepEqual(config.Cmd, ['claude']);
  assert.equal(config.User, 'root');
  assert.equal(config.WorkingDir, '/workspace');
  const env = Object.fromEntries((config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  assert.equal(env.SSL_CERT_FILE, SYSTEM_CA_BUNDLE);
  assert.equal(env.CURL_CA_BUNDLE, SYSTEM_CA_BUNDLE);
  assert.equal(env.NODE_EXTRA_CA_CERTS, IMAGE_CA_FILE);
  assert.equal(env.BROWSER, 'clawker-open');
});

test('inside: claude, node, the agent user, directories, git configuration, the prompt, the tools', { timeout: 120_000 }, async () => {
  const out = await inImage(
    [
      'set -e',
      'echo "claude=$(claude --version)"',
      'echo "node=$(node --version)"',
      'echo "id=$(id -u claude):$(id -g claude):$(getent passwd claude | cut -d: -f6)"',
      'echo "helper=$(git config --system credential.helper)"',
      `echo "helper-path=$(command -v git-credential-clawker)"`,
      'echo "opener=$(command -v clawker-open) $(readlink /usr/local/bin/xdg-open)"',
      `stat -c 'stat=%n %U:%G %a' /workspace /run/clawker /run/clawker/session /run/clawker/hostproxy ${AGENTD_BUNDLE} ${AGENTD_NATIVE}`,
      `grep -c 'clawker firewall add' ${AGENT_PROMPT_FILE} | sed 's/^/prompt=/'`,
      `node -e 'require(process.argv[1]); console.log("native=loaded")' ${AGENTD_NATIVE}`,
      'for t in git curl ssh jq rg python3 less ps unzip; do command -v $t >/dev/null || echo "missing=$t"; done',
      'echo "as-claude=$(su -s /bin/sh claude -c "id -u; git config --get credential.helper; npm config get prefix; claude --version >/dev/null && echo ok" | tr "\\n" " ")"',
    ].join('\n'),
  );
  const value = (key: string): string[] => out.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
  assert.match(value('claude')[0] ?? '', /^\d+\.\d+\.\d+ \(Claude Code\)$/);
  assert.match(value('node')[0] ?? '', /^v(1[89]|[2-9]\d)\./);
  assert.equal(value('id')[0], `${AGENT_UID}:${AGENT_GID}:/home/claude`);
  assert.equal(value('helper')[0], 'clawker');
  assert.equal(value('helper-path')[0], '/usr/local/bin/git-credential-clawker');
  assert.equal(value('opener')[0], '/usr/local/bin/clawker-open clawker-open');
  assert.deepEqual(value('stat'), [
    '/workspace claude:claude 755',
    '/run/clawker root:root 755',
    '/run/clawker/session root:root 700',
    '/run/clawker/hostproxy root:root 755',
    `${AGENTD_BUNDLE} root:root 644`,
    `${AGENTD_NATIVE} root:root 644`,
  ]);
  assert.ok(Number(value('prompt')[0]) >= 1, 'the prompt mentions clawker firewall add');
  assert.deepEqual(value('native'), ['loaded']);
  assert.deepEqual(value('missing'), []);
  // Global npm installs by the agent user go to its home.
  assert.equal(value('as-claude')[0]?.trim(), `${AGENT_UID} clawker /home/claude/.npm-global ok`);
});

test('the firewall CA is trusted: OpenSSL, curl, git, Python and Node accept its certificates, and reject another CA', { timeout: 120_000 }, async () => {
  const pki = await loadOrCreateCa(caDir);
  const other = createCertificateAuthority();
  const certs = join(work, 'tls');
  mkdirSync(certs, { recursive: true });
  writeFileSync(join(certs, 'leaf.pem'), issueDomainCertificate(pki.ca, pki.leafKey, TLS_NAME));
  writeFileSync(join(certs, 'leaf-key.pem'), privateKeyPem(pki.leafKey.privateKey), { mode: 0o644 });
  const otherKey = createLeafKey();
  writeFileSync(join(certs, 'other.pem'), issueDomainCertificate(other, otherKey, TLS_NAME));
  writeFileSync(join(certs, 'other-key.pem'), privateKeyPem(otherKey.privateKey), { mode: 0o644 });
  const server = (cert: string, key: string, port: number) =>
    `node -e 'const fs=require("fs");require("https").createServer({cert:fs.readFileSync("/tls/${cert}"),key:fs.readFileSync("/tls/${key}")},(q,s)=>{s.statusCode=q.url==="/"?200:404;s.end("hello\\n")}).listen(${port},"127.0.0.1")' &`;
  const out = await inImage(
    [
      server('leaf.pem', 'leaf-key.pem', 8443),
      server('other.pem', 'other-key.pem', 9443),
      'sleep 1.5',
      `openssl verify -CAfile ${SYSTEM_CA_BUNDLE} /tls/leaf.pem | sed 's/^/openssl=/'`,
      `echo "curl=$(curl -sS https://${TLS_NAME}:8443/ 2>&1)"`,
      `echo "curl-other=$(curl -sS https://${TLS_NAME}:9443/ >/dev/null 2>&1; echo $?)"`,
      `echo "python=$(python3 -c 'import urllib.request as u; print(u.urlopen("https://${TLS_NAME}:8443/").read().decode().strip())' 2>&1 | tail -1)"`,
      `echo "node=$(su -s /bin/sh claude -c 'node -e "require(\\"https\\").get(\\"https://${TLS_NAME}:8443/\\", (r) => r.on(\\"data\\", (d) => process.stdout.write(String(d).trim())))"' 2>&1)"`,
      `echo "node-other=$(node -e 'require("https").get("https://${TLS_NAME}:9443/", () => console.log("accepted")).on("error", (e) => console.log(e.code))' 2>&1)"`,
      // git: an HTTP error from the server (404) means the TLS handshake succeeded.
      `echo "git=$(GIT_TERMINAL_PROMPT=0 git ls-remote https://${TLS_NAME}:8443/repo.git 2>&1 | tr '\\n' ' ')"`,
      `echo "git-other=$(GIT_TERMINAL_PROMPT=0 git ls-remote https://${TLS_NAME}:9443/repo.git 2>&1 | tr '\\n' ' ')"`,
    ].join('\n'),
    ['-v', `${certs}:/tls:ro`, '--add-host', `${TLS_NAME}:127.0.0.1`],
  );
  const value = (key: string): string => out.split('\n').find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1) ?? '';
  assert.equal(value('openssl'), '/tls/leaf.pem: OK');
  assert.equal(value('curl'), 'hello');
  assert.notEqual(value('curl-other'), '0', 'curl accepted a certificate of another CA');
  assert.equal(value('python'), 'hello');
  assert.equal(value('node'), 'hello');
  assert.match(value('node-other'), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED|CERT_SIGNATURE_FAILURE/);
  assert.match(value('git'), /404|not found/i);
  assert.doesNotMatch(value('git'), /certificate|SSL/i);
  assert.match(value('git-other'), /certificate|SSL/i);
});

test('the tools reach the host proxy: git gets credentials from the host, clawker-open opens on the host', { timeout: 120_000 }, async () => {
  const gateway = (await runOk('docker', ['network', 'inspect', 'bridge', '-f', '{{range .IPAM.Config}}{{.Gateway}}{{end}}'])).trim() || '172.17.0.1';
  const secret = Buffer.alloc(32, 7);
  const containerName = `clawker-e2e-agent-tools-${process.pid}`;
  const gitCalls: { operation: GitOperation; fields: CredentialFields }[] = [];
  const opened: string[] = [];
  const tokens: (string | undefined)[] = [];
  const server = createHostProxyServer({
    secret,
    agents: { lookup: async () => ({ id: 'e2e', name: containerName }), lookupName: async (name) => (name === containerName ? { id: 'e2e', name } : undefined) },
    git: async (operation, fields) => {
      gitCalls.push({ operation, fields });
      return operation === 'get' ? { kind: 'found', username: 'octo', password: 'from-the-host' } : { kind: 'done' };
    },
    openUrl: async (url) => {
      opened.push(url);
    },
    log: () => undefined,
  });
  server.on('request', (req) => tokens.push(req.headers[HOST_PROXY_TOKEN_HEADER] as string | undefined));
  await new Promise<void>((resolve) => server.listen(0, gateway, resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const tokenDir = join(work, 'hostproxy');
    mkdirSync(tokenDir, { recursive: true });
    writeFileSync(join(tokenDir, 'token'), `${hostProxyToken(secret, containerName)}\n`, { mode: 0o644 });
    const out = await inImage(
      [
        'printf "protocol=https\\nhost=github.com\\npath=o/r.git\\n\\n" | git credential fill | sed "s/^/fill: /"',
        'echo "open=$(clawker-open https://github.com/login/device 2>&1)"',
        'echo "open-file=$(clawker-open file:///etc/passwd 2>&1; echo " exit=$?")"',
        'echo "off=$(env -u CLAWKER_HOST_PROXY clawker-open https://example.com/ 2>&1)"',
        'echo "silent=$(printf "protocol=https\\nhost=github.com\\n\\n" | env -u CLAWKER_HOST_PROXY git-credential-clawker get 2>&1 | wc -c)"',
      ].join('\n'),
      [
        '--name', containerName,
        '--user', `${AGENT_UID}:${AGENT_GID}`,
        '-e', `CLAWKER_HOST_PROXY=http://${gateway}:${port}`,
        '-v', `${join(tokenDir, 'token')}:${HOST_PROXY_TOKEN_FILE}:ro`,
      ],
    );
    assert.match(out, /^fill: protocol=https$/m);
    assert.match(out, /^fill: host=github\.com$/m);
    assert.match(out, /^fill: username=octo$/m);
    assert.match(out, /^fill: password=from-the-host$/m);
    // git hands helpers no path unless credential.useHttpPath is set.
    assert.deepEqual(gitCalls[0], { operation: 'get', fields: { protocol: 'https', host: 'github.com' } });
    assert.ok(tokens.every((t) => t === hostProxyToken(secret, containerName)), 'every request carried the container token');
    assert.match(out, /^open=clawker-open: opened github\.com in the browser on the host$/m);
    assert.deepEqual(opened, ['https://github.com/login/device']);
    assert.match(out, /^open-file=clawker-open: only http and https URLs are opened on the host\s+exit=1$/m);
    assert.match(out, /^off=clawker-open: not opened: the host proxy is off/m);
    assert.match(out, /^silent=0$/m);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('agentd starts the command as the agent user (firewall off: no session to wait for)', { timeout: 120_000 }, async () => {
  const out = await runOk(
    'docker',
    [
      'run', '--rm', '--label', `${E2E_PID_LABEL}=${process.pid}`,
      '--cap-drop', 'ALL', '--cap-add', 'SETUID', '--cap-add', 'SETGID', '--cap-add', 'KILL',
      '--security-opt', 'no-new-privileges',
      '-e', 'CLAWKER_FIREWALL_ENABLED=false',
      TAG, 'sh', '-c', 'echo "$(id -u):$(id -g) $(pwd)"',
    ],
    120_000,
  );
  assert.match(out, new RegExp(`^${AGENT_UID}:${AGENT_GID} /workspace$`, 'm'));
});

test('a rotated CA: status says staleCa, ensureAgentImage refuses until rebuild, then the new CA is trusted', { timeout: BUILD_TIMEOUT_MS }, async () => {
  const old = await loadOrCreateCa(caDir);
  const rotated = await rotateCa(caDir);
  const status = await agentImageStatus(docker, options());
  assert.equal(status.exists, true);
  assert.equal(status.staleCa, true);
  assert.equal(status.upToDate, false);
  assert.equal(status.caFingerprint, old.ca.certificate.fingerprint256);
  assert.equal(status.currentCaFingerprint, rotated.ca.certificate.fingerprint256);

  await assert.rejects(ensure(), (e: Error) => {
    assert.ok(e instanceof AgentImageStaleCaError, `${e.name}: ${e.message}`);
    assert.match(e.message, /rotated/);
    assert.match(e.message, /clawker build/);
    assert.match(e.message, /clawker run --rebuild/);
    return true;
  });

  // Cancelling a rebuild leaves the image as it was.
  const idBefore = (await docker.getImage(TAG).inspect()).Id;
  const controller = new AbortController();
  const cancelled = ensureAgentImage(docker, {
    ...options(),
    rebuild: true,
    signal: controller.signal,
    onProgress: (line) => {
      if (line.startsWith('Step ')) controller.abort();
    },
  });
  await assert.rejects(cancelled, (e: Error) => e.name === 'AbortError');
  assert.equal((await docker.getImage(TAG).inspect()).Id, idBefore);

  const { built, seconds } = await ensure({ rebuild: true });
  timings.caRotation = seconds;
  assert.equal(built, true);
  const after = await agentImageStatus(docker, options());
  assert.deepEqual([after.upToDate, after.staleCa, after.caFingerprint], [true, false, rotated.ca.certificate.fingerprint256]);
  assert.equal((await ensure()).built, false);

  const certs = join(work, 'tls-rotated');
  mkdirSync(certs, { recursive: true });
  writeFileSync(join(certs, 'new.pem'), issueDomainCertificate(rotated.ca, rotated.leafKey, TLS_NAME));
  writeFileSync(join(certs, 'old.pem'), issueDomainCertificate(old.ca, old.leafKey, TLS_NAME));
  const out = await inImage(
    [`openssl verify -CAfile ${SYSTEM_CA_BUNDLE} /tls/new.pem 2>&1 | tail -1`, `openssl verify -CAfile ${SYSTEM_CA_BUNDLE} /tls/old.pem >/dev/null 2>&1 || echo old-rejected`].join('\n'),
    ['-v', `${certs}:/tls:ro`],
  );
  assert.match(out, /^\/tls\/new\.pem: OK$/m);
  assert.match(out, /^old-rejected$/m);
});
