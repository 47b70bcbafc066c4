/**
 * Route semantics: for a corpus of requests, the decision reached by evaluating the rendered Envoy
 * listeners the way Envoy documents its matching equals `Policy.decide` (what `clawker firewall
 * check` prints). The corpus crosses every host, path and method of the spec's examples.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import { Policy } from '../../src/core/policy/policy';
import { parseRequestUrl } from '../../src/core/policy/requestUrl';
import { renderEnvoy } from '../../src/core/render/envoy/envoyConfig';
import { FRONT_LISTENER_PORT } from '../../src/core/render/envoy/listenerPlan';
import { evaluateEnvoy } from '../helpers/envoyRouteEvaluator';

const POLICIES: Record<string, string> = {
  'spec patterns and tables': `
security:
  firewall:
    add_domains: [github.com, .example.org]
    rules:
      - dst: api.example.com
        proto: https
        path_rules:
          - { path: /v1/chat, action: allow }
          - { path: /v1/models, action: allow }
        path_default: deny
      - dst: example.com
        proto: http
        port: "80"
        path_rules:
          - { path: /evil, action: deny }
        path_default: allow
      - dst: api.github.com
        proto: https
        path_rules:
          - { path: /, action: allow, methods: [GET, HEAD] }
        path_default: deny
      - dst: repos.example.net
        proto: https
        path_rules:
          - { path: "~/repos/(myorg|other)/?", action: allow }
          - { path: "~/repos/myorg(/.*)?", action: allow, methods: [GET] }
          - { path: /repos/myorg, action: deny, methods: [DELETE] }
        path_default: deny
      - dst: bad.example.org
        action: deny
      - dst: api.example.com
        proto: https
        port: "8443"
        path_rules:
          - { path: /admin, action: deny }
        path_default: allow
`,
  'deny writes': `
security:
  firewall:
    rules:
      - dst: api.github.com
        proto: https
        path_rules:
          - { path: /repos/, action: deny, methods: [POST, PUT, PATCH, DELETE] }
        path_default: allow
      - dst: .wild.example
        proto: https
      - dst: exact.wild.example
        proto: https
        path_rules:
          - { path: /only, action: allow }
      - dst: order.example
        proto: https
        path_rules:
          - { path: /v1, action: allow }
          - { path: /v1/admin, action: deny }
          - { path: "~/v1/admin/public(/.*)?", action: allow, methods: [GET] }
        path_default: deny
      - dst: tie.example
        proto: https
        path_rules:
          - { path: /abc, action: deny }
          - { path: "~/.*", action: allow }
        path_default: allow
`,
};

const HOSTS = ['api.example.com', 'example.com', 'api.github.com', 'github.com', 'repos.example.net', 'example.org', 'x.example.org', 'bad.example.org', 'claude.ai', 'a.claude.ai', 'wild.example', 'a.wild.example', 'exact.wild.example', 'tie.example', 'order.example', 'evil.com', 'example.com.evil.com'];
const PATHS = ['/', '/v1', '/v1/admin', '/v1/admin/x', '/v1/admin/public', '/v1/admin/public/y', '/v1/chat', '/v1/chat/completions', '/v1/models', '/v1/modelsx', '/admin', '/evil', '/evil/x', '/good', '/repos/myorg', '/repos/myorg/', '/repos/myorg-evil', '/repos/other', '/repos/myorg/pulls', '/repos/o/r/contents/f', '/share/x', '/public/p', '/only', '/abc', '/abcd', '//v1//chat', '/v1/chat/../admin', '/v1/chat/%2e%2e/admin', '/v1/chat%2fadmin', '/v1/%252e', '/v1/chat?q=/admin', '/a/./b'];
const METHODS = ['GET', 'HEAD', 'POST', 'DELETE'];
const ENDPOINTS = [
  { scheme: 'https', port: 443 },
  { scheme: 'http', port: 80 },
  { scheme: 'https', port: 8443 },
];

for (const [name, yaml] of Object.entries(POLICIES)) {
  describe(`Envoy routes decide like the policy: ${name}`, () => {
    const loaded = loadProject(yaml);
    assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
    const policy = new Policy({ project: loaded.rules });
    const envoy = renderEnvoy(policy);

    test('every request of the corpus gets the same verdict', () => {
      let compared = 0;
      let allowed = 0;
      const mismatches: string[] = [];
      for (const { scheme, port } of ENDPOINTS) {
        const listenerPort = port === 443 || port === 80 ? FRONT_LISTENER_PORT : envoy.plan.allocation[`tls:${port}`];
        for (const host of HOSTS) {
          for (const path of PATHS) {
            for (const method of METHODS) {
              const url = `${scheme}://${host}${port === 443 || port === 80 ? '' : `:${port}`}${path}`;
              const parsed = parseRequestUrl(url, { method });
              assert.ok(parsed.ok, url);
              const expected = policy.decide(parsed.request).verdict;
              const hostHeader = port === 443 || port === 80 ? host : `${host}:${port}`;
              const outcome =
                listenerPort === undefined
                  ? { kind: 'reset' as const }
                  : evaluateEnvoy(envoy.listeners, { listenerPort, tls: scheme === 'https', sni: host, host: hostHeader, path, method });
              const got = outcome.kind === 'forward' ? 'allow' : 'deny';
              compared++;
              if (expected === 'allow') allowed++;
              if (got !== expected) mismatches.push(`${method} ${url}: policy ${expected}, envoy ${JSON.stringify(outcome)}`);
            }
          }
        }
      }
      assert.deepEqual(mismatches.slice(0, 20), [], `${mismatches.length} of ${compared} differ`);
      assert.ok(allowed > 50 && allowed < compared - 50, `the corpus exercises both verdicts (${allowed} allowed of ${compared})`);
    });

    test('domain fronting: a Host outside the SNI domain gets 403', () => {
      const outcome = evaluateEnvoy(envoy.listeners, { listenerPort: FRONT_LISTENER_PORT, tls: true, sni: 'api.github.com', host: 'evil.com', path: '/', method: 'GET' });
      assert.deepEqual(outcome, { kind: 'status', status: 403, route: 'deny' });
    });

    test('an unknown SNI is reset', () => {
      assert.deepEqual(evaluateEnvoy(envoy.listeners, { listenerPort: FRONT_LISTENER_PORT, tls: true, sni: 'evil.com', host: 'evil.com', path: '/', method: 'GET' }), { kind: 'reset' });
    });

    test('a port in Host that the rule does not name is refused', () => {
      const outcome = evaluateEnvoy(envoy.listeners, { listenerPort: FRONT_LISTENER_PORT, tls: true, sni: 'api.github.com', host: 'api.github.com:8443', path: '/', method: 'GET' });
      assert.equal(outcome.kind, 'status');
    });
  });
}
