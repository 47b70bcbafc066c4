/**
 * The agent image's pure parts: the inputs hash (changes with every input, and only then), the
 * build context archive, the reading of build progress, the Dockerfile's agreement with the agent
 * contract, and the agent tools' protocol handling (git's credential helper, clawker-open).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { describeFailure, formatCredentialOutput, isGitOperation, parseCredentialInput, planCredentialRequest } from '../../src/agentTools/credentialProtocol';
import { hostProxyBase, readHostProxyToken } from '../../src/agentTools/hostProxyClient';
import { checkOpenUrl, urlHost } from '../../src/agentTools/openUrl';
import * as contract from '../../src/core/agents/agentContract';
import {
  agentImageBuildArgs,
  agentImageInputsHash,
  type AgentImageInputs,
  buildFailureHints,
  buildFailureMessage,
  BuildTranscript,
  CONTEXT,
  type ContextFile,
  isDigestPinned,
  isImageReference,
  parseStepLine,
  shortInstruction,
  tarArchive,
  toolCommandScript,
} from '../../src/core/agents/agentImageInputs';
import { findInstallationRoot, locateAgentImageSources } from '../../src/platform/docker/agentImage';

const ROOT = join(__dirname, '..', '..');
const DOCKERFILE = readFileSync(join(ROOT, 'images', 'agent', 'Dockerfile'), 'utf8');
const PROMPT = readFileSync(join(ROOT, 'images', 'agent', 'CLAUDE.md'), 'utf8');
const made: string[] = [];
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

// ---- the inputs hash ------------------------------------------------------------------------

const file = (name: string, content: string, extra: Partial<ContextFile> = {}): ContextFile => ({ name, content: Buffer.from(content), ...extra });

const BASE: AgentImageInputs = {
  files: [file('Dockerfile', 'FROM x\n'), file('agentd.js', 'console.log(1)'), file('ca.crt', 'CA1'), file('build-ca.crt', '', { hashed: false })],
  buildArgs: agentImageBuildArgs('clawker-testbed/debian:bookworm'),
  baseImage: 'clawker-testbed/debian:bookworm',
  baseImageId: 'sha256:aaa',
};

test('the inputs hash is a SHA-256 hex digest, stable, and independent of the order of files and build arguments', () => {
  const hash = agentImageInputsHash(BASE);
  assert.match(hash, /^[0-9a-f]{64}$/);
  assert.equal(agentImageInputsHash(BASE), hash);
  const reordered: AgentImageInputs = {
    ...BASE,
    files: [...BASE.files].reverse(),
    buildArgs: Object.fromEntries(Object.entries(BASE.buildArgs).reverse()),
  };
  assert.equal(agentImageInputsHash(reordered), hash);
});

test('the inputs hash changes when any input changes', () => {
  const hash = agentImageInputsHash(BASE);
  const variants: [string, AgentImageInputs][] = [
    ['a file content', { ...BASE, files: BASE.files.map((f) => (f.name === 'agentd.js' ? file('agentd.js', 'console.log(2)') : f)) }],
    ['the CA', { ...BASE, files: BASE.files.map((f) => (f.name === 'ca.crt' ? file('ca.crt', 'CA2') : f)) }],
    ['a file name', { ...BASE, files: BASE.files.map((f) => (f.name === 'agentd.js' ? file('agentd2.js', 'console.log(1)') : f)) }],
    ['a file mode', { ...BASE, files: BASE.files.map((f) => (f.name === 'agentd.js' ? { ...f, mode: 0o755 } : f)) }],
    ['a file added', { ...BASE, files: [...BASE.files, file('extra', '')] }],
    ['a file removed', { ...BASE, files: BASE.files.filter((f) => f.name !== 'agentd.js') }],
    ['the base image', { ...BASE, baseImage: 'other:bookworm' }],
    ['the base image id', { ...BASE, baseImageId: 'sha256:bbb' }],
    ['no base image id', { ...BASE, baseImageId: undefined }],
    ['the default base image', { ...BASE, baseImage: undefined, baseImageId: undefined }],
    ['a build argument value', { ...BASE, buildArgs: { ...BASE.buildArgs, AGENT_UID: '1002' } }],
    ['a build argument added', { ...BASE, buildArgs: { ...BASE.buildArgs, X: '' } }],
  ];
  const seen = new Set([hash]);
  for (const [what, inputs] of variants) {
    const changed = agentImageInputsHash(inputs);
    assert.notEqual(changed, hash, `${what} did not change the hash`);
    seen.add(changed);
  }
  assert.equal(seen.size, variants.length + 1, 'two different changes gave the same hash');
});

test('the inputs hash ignores files marked unhashed (the build-time CA) and frames every part', () => {
  const hash = agentImageInputsHash(BASE);
  const withBuildCa = { ...BASE, files: BASE.files.map((f) => (f.name === 'build-ca.crt' ? { ...f, content: Buffer.from('-----BEGIN CERTIFICATE-----') } : f)) };
  assert.equal(agentImageInputsHash(withBuildCa), hash);
  // Moving bytes between a name and a content, or between two files, is a different input.
  const a = { ...BASE, files: [file('ab', 'c'), file('d', '')] };
  const b = { ...BASE, files: [file('a', 'bc'), file('d', '')] };
  const c = { ...BASE, files: [file('ab', ''), file('d', 'c')] };
  assert.equal(new Set([a, b, c].map(agentImageInputsHash)).size, 3);
  assert.throws(() => agentImageInputsHash({ ...BASE, files: [file('x', '1'), file('x', '2')] }), /given twice/);
});

test('build arguments come from the agent contract, BASE_IMAGE only when chosen', () => {
  const args = agentImageBuildArgs();
  assert.equal(args.AGENT_UID, String(contract.AGENT_UID));
  assert.equal(args.AGENT_GID, String(contract.AGENT_GID));
  assert.equal(args.AGENT_USER, contract.AGENT_USER);
  assert.equal(args.IMAGE_CA_FILE, contract.IMAGE_CA_FILE);
  assert.equal('BASE_IMAGE' in args, false);
  assert.equal(agentImageBuildArgs('debian:bookworm').BASE_IMAGE, 'debian:bookworm');
});

test('image references: accepted and refused; digest pinning', () => {
  for (const ok of ['clawker-testbed/debian:bookworm', 'node:22-bookworm-slim@sha256:' + 'a'.repeat(64), 'registry.example.com:5000/x/y:1.0']) {
    assert.equal(isImageReference(ok), true, ok);
  }
  for (const bad of ['', '-x', '--build-arg=x', 'a b', 'a;b', 'a\nb', '$(x)', 'a'.repeat(600)]) assert.equal(isImageReference(bad), false, bad);
  assert.equal(isDigestPinned('node:22@sha256:' + 'a'.repeat(64)), true);
  assert.equal(isDigestPinned('node:22'), false);
});

// ---- the Dockerfile agrees with the contract ---------------------------------------------------

function argDefault(name: string): string | undefined {
  return new RegExp(`^ARG ${name}=(.*)$`, 'm').exec(DOCKERFILE)?.[1];
}

test('the Dockerfile defaults of every contract build argument equal the contract', () => {
  for (const [name, value] of Object.entries(agentImageBuildArgs())) {
    assert.equal(argDefault(name), value, `ARG ${name} default`);
  }
});

test('the Dockerfile: entrypoint, command, user, workdir, base image, tools, CA last', () => {
  // env(1) first strips what could make root's Node or the loader run code before agentd's (NODE_OPTIONS, LD_PRELOAD…).
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(DOCKERFILE);
  assert.ok(entrypoint, 'an exec-form ENTRYPOINT');
  const argv = JSON.parse(entrypoint[1]) as string[];
  assert.equal(argv[0], '/usr/bin/env');
  assert.deepEqual(argv, ['/usr/bin/env', ...contract.SUPERVISOR_STRIPPED_ENV.flatMap((name) => ['-u', name]), 'node', contract.AGENTD_BUNDLE, '--']);
  assert.match(DOCKERFILE, /^CMD \["claude"\]$/m);
  assert.match(DOCKERFILE, /^USER root$/m);
  assert.match(DOCKERFILE, /^WORKDIR \$\{WORKSPACE_DIR\}$/m);
  assert.match(argDefault('BASE_IMAGE') ?? '', /^node:22-bookworm-slim@sha256:[0-9a-f]{64}$/);
  assert.match(argDefault('CLAUDE_CODE_VERSION') ?? '', /^\d+\.\d+\.\d+$/);
  assert.match(DOCKERFILE, /git config --system credential\.helper clawker/);
  assert.match(DOCKERFILE, /BROWSER=clawker-open/);
  assert.match(DOCKERFILE, /--from=native \/build\/out\/agentd_proc\.node \$\{AGENTD_DIR\}\/agentd_proc\.node/);
  assert.equal(`${contract.AGENTD_DIR}/agentd_proc.node`, contract.AGENTD_NATIVE);
  // The CA is the last file copied, followed only by its trust step and metadata.
  const instructions = DOCKERFILE.split('\n').filter((l) => /^[A-Z]+ /.test(l));
  const caCopy = instructions.findIndex((l) => l.startsWith(`COPY ${CONTEXT.ca} `));
  assert.ok(caCopy > 0, 'COPY ca.crt');
  assert.deepEqual(
    instructions.slice(caCopy + 1).map((l) => l.split(' ')[0]),
    ['RUN', 'ENV', 'WORKDIR', 'USER', 'ENTRYPOINT', 'CMD'],
  );
  for (const env of ['SSL_CERT_FILE=${SYSTEM_CA_BUNDLE}', 'CURL_CA_BUNDLE=${SYSTEM_CA_BUNDLE}', 'NODE_EXTRA_CA_CERTS=${IMAGE_CA_FILE}']) assert.ok(DOCKERFILE.includes(env), env);
  // Nothing BuildKit-only: the classic builder of Docker 20.10 builds it.
  assert.doesNotMatch(DOCKERFILE, /^# syntax=|--mount=|--chmod=|<<EOF|--link/m);
  // Every file the Dockerfile copies from the context is one the builder puts there.
  const sources = [...DOCKERFILE.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(' '));
  const names = new Set<string>(Object.values(CONTEXT).map((n) => n.split('/')[0]!));
  for (const source of sources) assert.ok(names.has(source.replace(/\/$/, '')), `COPY ${source} is not in the build context`);
});

test('the tool commands run the bundles from the contract directory', () => {
  assert.equal(toolCommandScript(CONTEXT.credentialHelper), `#!/bin/sh\nexec node ${contract.AGENTD_DIR}/git-credential-clawker.js "$@"\n`);
});

test('the awareness prompt says what to run and names the environment', () => {
  assert.match(PROMPT, /clawker firewall add <domain>/);
  assert.match(PROMPT, /clawker firewall add github\.com --proto ssh --port 22/);
  assert.match(PROMPT, /security:\n {2}firewall:\n {4}add_domains:/);
  for (const name of [contract.ENV_PROJECT, contract.ENV_AGENT, contract.ENV_FIREWALL_ENABLED, contract.ENV_HOST_PROXY]) assert.ok(PROMPT.includes(name), name);
  for (const symptom of ['NXDOMAIN', 'reset', 'Clawker Firewall CA', String(contract.AGENT_UID), contract.WORKSPACE_DIR]) assert.ok(PROMPT.includes(symptom), symptom);
});

// ---- the context archive ---------------------------------------------------------------------

test('the context archive is a tar that tar reads back: directories, contents, modes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-agent-tar-'));
  made.push(dir);
  const files = [
    file('Dockerfile', 'FROM scratch\n'),
    file('native/build.sh', '#!/bin/sh\n', { mode: 0o755 }),
    file('node-api-headers/node_api.h', 'x'.repeat(1000)),
    file('empty', ''),
  ];
  const tar = tarArchive(files);
  assert.equal(tar.length % 512, 0);
  writeFileSync(join(dir, 'context.tar'), tar);
  const listing = execFileSync('tar', ['-tvf', join(dir, 'context.tar')], { encoding: 'utf8' });
  assert.match(listing, /^drwxr-xr-x root\/root +0 .* native\/$/m);
  assert.match(listing, /^-rwxr-xr-x root\/root +10 .* native\/build\.sh$/m);
  assert.match(listing, /^-rw-r--r-- root\/root +1000 .* node-api-headers\/node_api\.h$/m);
  execFileSync('tar', ['-xf', join(dir, 'context.tar'), '-C', dir]);
  assert.equal(readFileSync(join(dir, 'node-api-headers', 'node_api.h'), 'utf8'), 'x'.repeat(1000));
  assert.equal(readFileSync(join(dir, 'empty'), 'utf8'), '');
  assert.deepEqual(tarArchive([...files].reverse()), tar, 'the archive depends on the files only');
});

test('the context archive refuses paths that leave the context', () => {
  for (const name of ['/etc/passwd', '../x', 'a/../../x', 'a//b', '', './x']) assert.throws(() => tarArchive([file(name, '')]), /not a relative/, name);
  assert.throws(() => tarArchive([file('x'.repeat(101), '')]), /too long/);
});

// ---- build progress ---------------------------------------------------------------------------

test('step lines are parsed and shortened', () => {
  assert.deepEqual(parseStepLine('Step 13/42 : RUN set -eu; npm install'), { number: 13, total: 42, instruction: 'RUN set -eu; npm install' });
  assert.equal(parseStepLine(' ---> Running in abc'), undefined);
  assert.equal(shortInstruction('RUN a    b\n c', 100), 'RUN a b c');
  assert.equal(shortInstruction('x'.repeat(200), 10).length, 10);
});

test('the transcript follows split stream chunks, reports steps and errors, and a failure names the step and the last lines', () => {
  const t = new BuildTranscript(5);
  const shown: string[] = [];
  const push = (e: object) => shown.push(...t.push(e));
  push({ stream: 'Step 1/3 : FROM clawker-testbed/debian:bookworm\n' });
  push({ stream: ' ---> 7981c7443651\nStep 2/3 : RUN npm ins' });
  push({ stream: 'tall -g x\n' });
  push({ stream: ' ---> Running in abc\n\u001b[91mnpm ERR! code SELF_SIGNED_CERT_IN_CHAIN\n\u001b[0m' });
  push({ errorDetail: { code: 1, message: "The command '/bin/sh -c npm install -g x' returned a non-zero code: 1" }, error: 'ignored' });
  assert.deepEqual(shown, [
    'Step 1/3 : FROM clawker-testbed/debian:bookworm',
    'Step 2/3 : RUN npm install -g x',
    "error: The command '/bin/sh -c npm install -g x' returned a non-zero code: 1",
  ]);
  assert.deepEqual(t.step, { number: 2, total: 3, instruction: 'RUN npm install -g x' });
  const message = buildFailureMessage('clawker-agent:test', t);
  assert.match(message, /^Building clawker-agent:test failed at step 2\/3 \(RUN npm install -g x\): The command/);
  assert.match(message, /\| npm ERR! code SELF_SIGNED_CERT_IN_CHAIN/);
  assert.match(message, /CLAWKER_BUILD_CA_FILE/);
  assert.doesNotMatch(message, /\u001b/);
  push({ aux: { ID: 'sha256:abc' } });
  assert.equal(t.imageId, 'sha256:abc');
  assert.ok(t.tail().length <= 5);
});

test('failure hints: TLS interception, name resolution, pull', () => {
  assert.equal(buildFailureHints('all fine').length, 0);
  assert.match(buildFailureHints('Temporary failure resolving deb.debian.org').join(), /deb\.debian\.org/);
  assert.match(buildFailureHints('pull access denied for node').join(), /CLAWKER_BASE_IMAGE/);
});

// ---- where the sources are --------------------------------------------------------------------

test('the installation root is found from the source tree and from dist/', () => {
  assert.equal(findInstallationRoot(join(ROOT, 'src', 'platform', 'docker')), ROOT);
  assert.equal(findInstallationRoot(join(ROOT, 'dist')), ROOT);
  assert.equal(findInstallationRoot('/'), undefined);
  assert.throws(() => locateAgentImageSources(undefined), /images\/agent\/Dockerfile not found/);
  const fake = mkdtempSync(join(tmpdir(), 'clawker-agent-root-'));
  made.push(fake);
  assert.throws(() => locateAgentImageSources(fake), /npm run build/);
});

// ---- git-credential-clawker -------------------------------------------------------------------

test('credential input: key=value lines up to the first blank line; unknown keys dropped; last value wins', () => {
  const input = parseCredentialInput(
    'protocol=https\nhost=github.com\ncapability[]=authtype\nwwwauth[]=Basic realm="x"\nusername=a\nusername=octo\npath=o/r.git\n\npassword=after-blank\n',
  );
  assert.deepEqual(input, { protocol: 'https', host: 'github.com', username: 'octo', path: 'o/r.git' });
  assert.deepEqual(parseCredentialInput('protocol=https\r\nhost=example.com:8443\r\n'), { protocol: 'https', host: 'example.com:8443' });
  assert.deepEqual(parseCredentialInput('garbage\n=x\nhost=h'), { host: 'h' });
  assert.deepEqual(parseCredentialInput('url=https://octo@git.example.com:8443/o/r.git\n'), {
    protocol: 'https',
    host: 'git.example.com:8443',
    path: 'o/r.git',
    username: 'octo',
  });
  assert.deepEqual(parseCredentialInput('url=not a url\n'), {});
  assert.deepEqual(parseCredentialInput('password=a=b=c\n'), { password: 'a=b=c' });
});

test('credential requests: https with a host only; store needs username and password; bodies carry known keys only', () => {
  assert.equal(isGitOperation('get'), true);
  assert.equal(isGitOperation('capability'), false);
  assert.equal(isGitOperation(undefined), false);
  assert.deepEqual(planCredentialRequest('get', { protocol: 'https', host: 'github.com', path: 'o/r.git' }), {
    kind: 'send',
    body: { operation: 'get', fields: { protocol: 'https', host: 'github.com', path: 'o/r.git' } },
  });
  const http = planCredentialRequest('get', { protocol: 'http', host: 'example.com' });
  assert.equal(http.kind, 'skip');
  assert.equal(planCredentialRequest('get', { protocol: 'https' }).kind, 'skip');
  assert.equal(planCredentialRequest('get', {}).kind, 'skip');
  assert.equal(planCredentialRequest('store', { protocol: 'https', host: 'h', username: 'u' }).kind, 'skip');
  const store = planCredentialRequest('store', { protocol: 'https', host: 'h', username: 'u', password: 'p' });
  assert.deepEqual(store, { kind: 'send', body: { operation: 'store', fields: { protocol: 'https', host: 'h', username: 'u', password: 'p' } } });
  const bad = planCredentialRequest('get', { protocol: 'https', host: 'h', username: 'a\rb' });
  assert.equal(bad.kind, 'skip');
  assert.ok(bad.kind === 'skip' && !bad.reason.includes('a\rb'));
});

test('credential output: username and password lines from the answer; nothing unusable', () => {
  assert.equal(formatCredentialOutput({ fields: { username: 'octo', password: 'tok' } }), 'username=octo\npassword=tok\n');
  assert.equal(formatCredentialOutput({ fields: { password: 'tok', extra: 'x', host: 'h' } }), 'host=h\npassword=tok\n');
  assert.equal(formatCredentialOutput({ fields: { username: 'octo' } }), '', 'no password: no answer');
  assert.equal(formatCredentialOutput({ fields: { username: 'octo', password: 'a\nprotocol=http' } }), '', 'a value with a newline is dropped');
  assert.equal(formatCredentialOutput({ fields: { username: 'octo', password: 5 } }), '');
  for (const junk of [undefined, null, 'x', [], { fields: [] }, { fields: null }, {}]) assert.equal(formatCredentialOutput(junk), '');
});

test('failure reasons never carry the credential, nor control characters', () => {
  assert.equal(describeFailure(403, { error: 'wrong token' }), 'HTTP 403: wrong token');
  assert.equal(describeFailure(502, 'not json'), 'HTTP 502');
  assert.equal(describeFailure(400, { error: 'bad\u001b[31m\nline' }), 'HTTP 400: bad [31m line');
  const withSecret = describeFailure(502, { error: 'git said: hunter22 is wrong' }, ['hunter22']);
  assert.ok(!withSecret.includes('hunter22'));
  assert.ok(describeFailure(400, { error: 'x'.repeat(1000) }).length < 220);
});

test('the host proxy URL: unset or empty means off; only plain http(s) origins', () => {
  assert.equal(hostProxyBase({}), undefined);
  assert.equal(hostProxyBase({ CLAWKER_HOST_PROXY: '  ' }), undefined);
  assert.equal(hostProxyBase({ CLAWKER_HOST_PROXY: 'http://172.30.0.1:18374' })?.href, 'http://172.30.0.1:18374/');
  assert.throws(() => hostProxyBase({ CLAWKER_HOST_PROXY: 'file:///etc/passwd' }), /not an http URL/);
  assert.throws(() => hostProxyBase({ CLAWKER_HOST_PROXY: 'http://u:p@h:1' }), /credentials/);
  assert.throws(() => hostProxyBase({ CLAWKER_HOST_PROXY: 'nope' }), /not a URL/);
});

test('the token file: trimmed; missing or malformed named without its contents', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-agent-token-'));
  made.push(dir);
  writeFileSync(join(dir, 'token'), 'abc123\n');
  assert.equal(readHostProxyToken(join(dir, 'token')), 'abc123');
  writeFileSync(join(dir, 'bad'), 'secret value\nx');
  assert.throws(
    () => readHostProxyToken(join(dir, 'bad')),
    (e: Error) => /malformed/.test(e.message) && !e.message.includes('secret value'),
  );
  assert.throws(() => readHostProxyToken(join(dir, 'missing')), /ENOENT/);
});

// ---- clawker-open -----------------------------------------------------------------------------

test('clawker-open takes one http(s) URL', () => {
  assert.deepEqual(checkOpenUrl(['https://github.com/login/device']), { ok: true, url: 'https://github.com/login/device' });
  assert.deepEqual(checkOpenUrl(['HTTP://Example.com']), { ok: true, url: 'http://example.com/' });
  for (const args of [[], ['a', 'b'], [''], ['file:///etc/passwd'], ['javascript:alert(1)'], ['https://a b'], ['https://x\n'], ['ftp://x'], ['https://']]) {
    const r = checkOpenUrl(args);
    assert.equal(r.ok, false, JSON.stringify(args));
  }
  assert.equal(urlHost('https://github.com:8443/login?code=secret'), 'github.com:8443');
});
