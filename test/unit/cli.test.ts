/** `clawker validate`, run as the bundled binary users get. */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');

before(() => execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT }));

const run = (args: string[], cwd: string) => spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
const made: string[] = [];
const workdir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-cli-'));
  made.push(dir);
  return dir;
};
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

test('prints FILE:LINE:COL: severity: message and exits 1 on an error', () => {
  const dir = workdir();
  writeFileSync(join(dir, 'bad.yaml'), 'security:\n  firewall:\n    rules:\n      - dst: a.example.com\n        proto: tls\n        path_rules:\n          - path: v1\n            action: allow\n');
  const r = run(['validate', 'bad.yaml'], dir);
  assert.equal(r.status, 1);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^bad\.yaml:5:16: info: 'tls' is the legacy name of 'https'/);
  assert.match(lines[1]!, /^bad\.yaml:7:19: error: path 'v1' must start with '\/'/);
  assert.match(r.stderr, /1 error, 0 warnings, 1 note/);
});

test('exits 0 when there are only warnings, and finds .clawker.yaml by itself', () => {
  const dir = workdir();
  writeFileSync(join(dir, '.clawker.yaml'), 'build:\n  stacks: [go]\n');
  const r = run(['validate'], dir);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^\.clawker\.yaml:2:3: warning: 'build\.stacks'/);
});

test('finds .clawker/clawker.yaml when there is no .clawker.yaml', () => {
  const dir = workdir();
  mkdirSync(join(dir, '.clawker'));
  writeFileSync(join(dir, '.clawker', 'clawker.yaml'), 'security:\n  docker_socket: maybe\n');
  const r = run(['validate'], dir);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^\.clawker\/clawker\.yaml:2:18: error: security\.docker_socket must be true or false/);
});

test('a clean file prints nothing on stdout and exits 0', () => {
  const dir = workdir();
  writeFileSync(join(dir, '.clawker.yaml'), 'security:\n  firewall:\n    add_domains: [github.com]\n');
  const r = run(['validate'], dir);
  assert.equal(r.status, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /no problems/);
});

test('a missing file is reported, not a stack trace (exit 2)', () => {
  const dir = workdir();
  const r = run(['validate', 'nope.yaml'], dir);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /cannot read nope\.yaml: ENOENT/);
  const none = run(['validate'], dir);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /no \.clawker\.yaml or \.clawker\/clawker\.yaml/);
});

test('settings.yaml is validated as settings', () => {
  const dir = workdir();
  writeFileSync(join(dir, 'settings.yaml'), 'firewall:\n  upstream_dns: [not-an-ip]\n');
  const r = run(['validate', 'settings.yaml'], dir);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /settings\.yaml:2:18: error: firewall\.upstream_dns\[0\]/);
});

test('firewall check: allow exits 0, deny exits 1, each with the deciding rule', () => {
  const dir = workdir();
  writeFileSync(
    join(dir, '.clawker.yaml'),
    'security:\n  firewall:\n    rules:\n      - dst: api.github.com\n        path_rules:\n          - path: /\n            action: allow\n            methods: [GET, HEAD]\n        path_default: deny\n      - dst: github.com\n        proto: ssh\n',
  );
  const get = run(['firewall', 'check', 'https://api.github.com/repos/o/r'], dir);
  assert.equal(get.status, 0);
  assert.match(get.stdout, /^allow: GET \/repos\/o\/r matches path rule '\/' \[GET, HEAD\] allow of the project rule api\.github\.com https:443 allow\n$/);
  const post = run(['firewall', 'check', 'https://api.github.com/repos/o/r/git-receive-pack', '--method', 'post'], dir);
  assert.equal(post.status, 1);
  assert.match(post.stdout, /^deny: POST .* matches no path rule .*path_default deny/);
  assert.equal(run(['firewall', 'check', 'ssh://github.com'], dir).status, 0);
  assert.equal(run(['firewall', 'check', 'ssh://github.com', '--port', '2222'], dir).status, 1);
  const other = run(['firewall', 'check', 'https://evil.example/'], dir);
  assert.equal(other.status, 1);
  assert.match(other.stdout, /^deny: NXDOMAIN: no rule names evil\.example \(deny by default\)/);
});

test('firewall check: a broken config decides nothing (exit 2); a bad URL is a usage error', () => {
  const dir = workdir();
  writeFileSync(join(dir, 'broken.yaml'), 'security:\n  firewall:\n    rules:\n      - dst: a.com\n        port: "99999"\n');
  const r = run(['firewall', 'check', 'https://a.com/', '--config', 'broken.yaml'], dir);
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /broken\.yaml:5:15: error: port '99999'/);
  assert.match(r.stderr, /no policy can be built/);
  const bad = run(['firewall', 'check', 'not a url'], dir);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /is not a URL/);
  const tcp = run(['firewall', 'check', 'tcp://db.example.com'], dir);
  assert.equal(tcp.status, 2);
  assert.match(tcp.stderr, /needs a port/);
});

test('firewall render writes Envoy, CoreDNS, BPF entries and certificates; ports stay stable; rotate-ca replaces the CA', () => {
  const dir = workdir();
  writeFileSync(join(dir, '.clawker.yaml'), 'security:\n  firewall:\n    add_domains: [github.com]\n    rules:\n      - dst: github.com\n        proto: ssh\n');
  const env = { ...process.env, CLAWKER_DATA_DIR: join(dir, 'data') };
  const render = () => spawnSync(process.execPath, [CLI, 'firewall', 'render', '--out', 'out'], { cwd: dir, encoding: 'utf8', env });
  const first = render();
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /^rendered 13 rules: 2 listeners, \d+ routes, 12 certificates into out\n$/);
  for (const f of ['envoy/envoy.yaml', 'envoy/lds.json', 'envoy/cds.json', 'coredns/Corefile', 'bpf/entries.json', 'envoy/certs/github.com.pem']) {
    assert.ok(statSync(join(dir, 'out', f)).isFile(), f);
  }
  assert.equal(statSync(join(dir, 'out/envoy/certs/leaf-key.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'data/firewall/ca/ca-key.pem')).mode & 0o777, 0o600);
  const ports = readFileSync(join(dir, 'out/envoy/listeners.json'), 'utf8');
  assert.deepEqual(JSON.parse(ports), { 'tcp:github.com:22': 10001 });
  writeFileSync(join(dir, '.clawker.yaml'), 'security:\n  firewall:\n    add_domains: [github.com]\n    rules:\n      - dst: aaa.example.com\n        proto: ssh\n      - dst: github.com\n        proto: ssh\n');
  assert.equal(render().status, 0);
  assert.equal(JSON.parse(readFileSync(join(dir, 'out/envoy/listeners.json'), 'utf8'))['tcp:github.com:22'], 10001, 'github keeps its listener');
  const caBefore = readFileSync(join(dir, 'data/firewall/ca/ca.pem'), 'utf8');
  const rotate = spawnSync(process.execPath, [CLI, 'firewall', 'rotate-ca'], { cwd: dir, encoding: 'utf8', env });
  assert.equal(rotate.status, 0);
  assert.match(rotate.stdout, /rebuild agent images/i);
  assert.notEqual(readFileSync(join(dir, 'data/firewall/ca/ca.pem'), 'utf8'), caBefore);
});

test('firewall render refuses a broken project file and writes nothing', () => {
  const dir = workdir();
  writeFileSync(join(dir, '.clawker.yaml'), 'security:\n  firewall:\n    rules:\n      - dst: "2001:db8::1"\n');
  const r = spawnSync(process.execPath, [CLI, 'firewall', 'render', '--out', 'out'], { cwd: dir, encoding: 'utf8', env: { ...process.env, CLAWKER_DATA_DIR: join(dir, 'data') } });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /\.clawker\.yaml:4:14: error: '2001:db8::1' is a native IPv6 address/);
  assert.match(r.stderr, /nothing was rendered/);
  assert.throws(() => statSync(join(dir, 'out')));
});
