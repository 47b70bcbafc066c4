/** The CoreDNS and BPF renderers, against what the spec asks of them. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import { domainKey } from '../../src/core/firewall/domainKey';
import { Policy } from '../../src/core/policy/policy';
import { renderBpfEntries } from '../../src/core/render/bpfEntries';
import { renderCorefile } from '../../src/core/render/corednsConfig';
import { planListeners } from '../../src/core/render/envoy/listenerPlan';
import { renderEnvoy } from '../../src/core/render/envoy/envoyConfig';

const YAML = `
security:
  firewall:
    add_domains: [github.com, .example.org, api.example.org]
    rules:
      - dst: github.com
        proto: ssh
      - dst: gitlab.com
        proto: ssh
      - dst: 10.0.0.5
        proto: tcp
        port: "9000-9002"
      - dst: ntp.example.net
        proto: udp
        port: "123"
      - dst: bad.example.org
        action: deny
      - dst: plain.example.net
        proto: http
`;
const loaded = loadProject(YAML);
assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
const policy = new Policy({ project: loaded.rules });

/** The server blocks of a Corefile, by zone, as lists of trimmed lines. */
function blocks(corefile: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of corefile.matchAll(/^(\S+):53 \{\n([\s\S]*?)\n\}$/gm)) out.set(m[1]!, m[2]!.split('\n').map((l) => l.trim()));
  return out;
}

describe('Corefile', () => {
  const corefile = renderCorefile(policy, { upstreams: ['1.1.1.2', '1.0.0.2'] });
  const zones = blocks(corefile);

  test('deny by default: the root zone answers NXDOMAIN and holds the health endpoint on 18902', () => {
    const root = zones.get('.')!;
    assert.ok(root.includes('health :18902'));
    assert.ok(root.includes('rcode NXDOMAIN'));
    assert.ok(!root.some((l) => l.startsWith('forward')));
  });
  test('allowed zones are forwarded to the configured upstreams, with dnsbpf before forward', () => {
    const gh = zones.get('github.com')!;
    assert.ok(gh.includes('forward . 1.1.1.2 1.0.0.2'));
    assert.ok(gh.indexOf('dnsbpf github.com -') >= 0 && gh.indexOf('dnsbpf github.com -') < gh.indexOf('forward . 1.1.1.2 1.0.0.2'));
  });
  test('an exact rule answers NXDOMAIN for its subdomains', () => {
    assert.ok(zones.get('github.com')!.includes('match "^.+\\.github\\.com\\.$"'));
    assert.ok(!zones.get('example.org')!.some((l) => l.startsWith('match')), 'a wildcard zone forwards its subdomains');
  });
  test('AAAA gets no data in every allowed zone', () => {
    for (const [zone, lines] of zones) {
      if (lines.some((l) => l.startsWith('forward . 1.1.1.2'))) assert.ok(lines.includes('template IN AAAA {') && lines.includes('rcode NOERROR'), zone);
    }
  });
  test('a deny rule is an NXDOMAIN zone that wins over the wildcard', () => {
    const bad = zones.get('bad.example.org')!;
    assert.ok(bad.includes('match "^bad\\.example\\.org\\.$"') && bad.includes('rcode NXDOMAIN'));
    assert.ok(bad.includes('dnsbpf - .example.org'), 'its subdomains still fall to the wildcard');
  });
  test('an exact rule inside a wildcard owns its name; its subdomains carry the wildcard key', () => {
    assert.ok(zones.get('api.example.org')!.includes('dnsbpf api.example.org .example.org'));
  });
  test("Docker's internal name goes to Docker's DNS, without a subtree and without dnsbpf", () => {
    const docker = zones.get('host.docker.internal')!;
    assert.ok(docker.includes('forward . 127.0.0.11'));
    assert.ok(docker.includes('match "^.+\\.host\\.docker\\.internal\\.$"'));
    assert.ok(!docker.some((l) => l.startsWith('dnsbpf')));
  });
  test('built-in domains are there', () => {
    for (const z of ['api.anthropic.com', 'claude.ai', 'datadoghq.com', 'registry.npmjs.org']) assert.ok(zones.has(z), z);
  });
});

describe('BPF entries', () => {
  const envoy = renderEnvoy(policy);
  const bpf = renderBpfEntries(policy, envoy.plan);
  const route = (destination: string, l4: string, port: number) => bpf.routes.find((r) => r.destination === destination && r.l4 === l4 && r.port === port);

  test('HTTPS on 443 goes to the front listener 10000', () => {
    assert.equal(route('github.com', 'tcp', 443)?.listenerPort, 10000);
    assert.equal(route('.example.org', 'tcp', 443)?.listenerPort, 10000);
    assert.equal(route('api.anthropic.com', 'tcp', 443)?.listenerPort, 10000);
  });
  test('ssh rules get their own pinned listener from 10001, one per host', () => {
    const gh = route('github.com', 'tcp', 22)!;
    const gl = route('gitlab.com', 'tcp', 22)!;
    assert.ok(gh.listenerPort >= 10001 && gl.listenerPort >= 10001 && gh.listenerPort !== gl.listenerPort);
    assert.equal(envoy.plan.allocation['tcp:github.com:22'], gh.listenerPort);
  });
  test('a destination gets no route for a port no rule allows it', () => {
    assert.equal(route('gitlab.com', 'tcp', 443), undefined);
    assert.equal(route('.example.org', 'tcp', 22), undefined);
  });
  test('UDP routes only by rule', () => {
    assert.ok(route('ntp.example.net', 'udp', 123));
    assert.equal(route('github.com', 'udp', 443), undefined);
  });
  test('denied names have no routes; keys are the domain keys', () => {
    assert.ok(bpf.routes.every((r) => r.destination !== 'bad.example.org'));
    for (const r of bpf.routes) assert.equal(r.domainKey, domainKey(r.destination));
  });
  test('IP-literal rules get a permanent DNS-cache entry and a route per port', () => {
    assert.deepEqual(bpf.staticDnsCache.map((e) => e.address), ['10.0.0.5']);
    assert.deepEqual([9000, 9001, 9002].map((p) => route('10.0.0.5', 'tcp', p)?.listenerPort !== undefined), [true, true, true]);
  });
  test('plain HTTP on 80 goes to the front listener', () => assert.equal(route('plain.example.net', 'tcp', 80)?.listenerPort, 10000));
});

describe('listener ports are stable across renders', () => {
  test('adding a rule does not renumber existing listeners', () => {
    const before = planListeners(policy.rules);
    const more = loadProject(`${YAML}      - dst: aaa.example.net\n        proto: tcp\n        port: "5432"\n`);
    const after = planListeners(new Policy({ project: more.rules }).rules, before.allocation);
    for (const [key, port] of Object.entries(before.allocation)) assert.equal(after.allocation[key], port, key);
    const added = after.allocation['tcp:aaa.example.net:5432'];
    assert.ok(added !== undefined && !Object.values(before.allocation).includes(added), 'the new listener takes a free port');
  });
  test('a removed rule frees its port; ports never collide', () => {
    const plan = planListeners(policy.rules, { 'tcp:github.com:22': 10050, 'tcp:gone.example:22': 10001 });
    assert.equal(plan.allocation['tcp:github.com:22'], 10050);
    assert.equal(new Set(Object.values(plan.allocation)).size, Object.keys(plan.allocation).length);
  });
});
