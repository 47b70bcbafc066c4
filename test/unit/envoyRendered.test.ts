/**
 * The Envoy configuration Clawker renders, parsed strictly into Envoy's own API types
 * (go-control-plane; unknown fields rejected) and passed through their validation. This is the
 * verification available without an Envoy binary: it proves the shape, not Envoy's behaviour.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import { Policy } from '../../src/core/policy/policy';
import { renderAll } from '../../src/core/render/renderAll';
import { checkEnvoyConfig } from '../helpers/envoyConfigCheck';

const ROOT = join(__dirname, '..', '..');
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const POLICIES: Record<string, string> = {
  'built-in rules only': '',
  'a real clawker project file': readFileSync(join(ROOT, 'test/fixtures/clawker/current-python.clawker.yaml'), 'utf8'),
  'every protocol, wildcards, deny rules, websockets, other ports': `
security:
  firewall:
    add_domains: [github.com, .example.org, api.example.org]
    rules:
      - { dst: github.com, proto: ssh }
      - { dst: gitlab.com, proto: ssh }
      - { dst: bad.example.org, action: deny }
      - { dst: ws.example.net, proto: wss }
      - { dst: ws.example.net, proto: https, path_rules: [{ path: /api, action: allow, methods: [GET, POST] }] }
      - { dst: plain.example.net, proto: http, path_rules: [{ path: "~/v[0-9]+/.*", action: allow }], path_default: deny }
      - { dst: chat.example.net, proto: ws }
      - { dst: api.example.com, proto: https, port: "8443", path_rules: [{ path: /admin, action: deny }], path_default: allow }
      - { dst: ntp.example.net, proto: udp, port: "123" }
      - { dst: 10.0.0.5, proto: tcp, port: "5432-5434" }
`,
};

for (const [name, yaml] of Object.entries(POLICIES)) {
  test(`rendered Envoy configuration is valid Envoy API: ${name}`, async () => {
    const loaded = loadProject(yaml);
    assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
    const rendered = renderAll(new Policy({ project: loaded.rules }), { upstreams: ['1.1.1.2'] });
    const dir = mkdtempSync(join(tmpdir(), 'clawker-envoy-'));
    dirs.push(dir);
    const files: string[] = [];
    for (const [relative, content] of rendered.files) {
      if (!/^envoy\/(envoy\.yaml|lds\.json|cds\.json)$/.test(relative)) continue;
      const file = join(dir, relative);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, content);
      files.push(file);
    }
    assert.deepEqual(files.map((f) => f.slice(dir.length + 1)).sort(), ['envoy/cds.json', 'envoy/envoy.yaml', 'envoy/lds.json']);
    const result = await checkEnvoyConfig(files);
    assert.ok(result.ok, result.output);
    assert.match(result.output, /lds\.json: ok \(\d+ resources/);
  });
}
