/**
 * The Envoy configuration checker itself (test/envoy-config-check): valid fixtures pass, and each
 * invalid fixture fails with a message that names its problem. Later tests of the renderer rely
 * on it through test/helpers/envoyConfigCheck.ts. Needs Go; without it this test fails.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { join } from 'node:path';
import { buildEnvoyConfigChecker, CHECKER_DIR, checkEnvoyConfig } from '../helpers/envoyConfigCheck';

const valid = (name: string) => join(CHECKER_DIR, 'testdata', 'valid', name);
const invalid = (name: string) => join(CHECKER_DIR, 'testdata', 'invalid', name);

before(async () => {
  const t0 = Date.now();
  await buildEnvoyConfigChecker();
  console.log(`envoy-config-check ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

test('valid bootstrap, LDS and CDS files pass', async () => {
  const files = [valid('bootstrap.yaml'), valid('lds.yaml'), valid('cds.yaml')];
  const r = await checkEnvoyConfig(files);
  assert.ok(r.ok, r.output);
  assert.match(r.output, /bootstrap\.yaml: ok \(1 resources, envoy\.config\.bootstrap\.v3\.Bootstrap\)/);
  assert.match(r.output, /lds\.yaml: ok \(1 resources, envoy\.service\.discovery\.v3\.DiscoveryResponse\)/);
  assert.match(r.output, /cds\.yaml: ok \(1 resources, envoy\.service\.discovery\.v3\.DiscoveryResponse\)/);
});

const cases: [file: string, expected: RegExp][] = [
  ['unknown-field.yaml', /resources\[0\]\.filter_chains\[0\]\.filter_chain_match\.server_name: unknown field "server_name" in envoy\.config\.listener\.v3\.FilterChainMatch \(did you mean "server_names"\?\)/],
  ['wrong-type.yaml', /resources\[0\]\.connect_timeout: expected a duration string .*got a number \(5\)/],
  ['port-out-of-range.yaml', /resources\[0\]\.address\.socket_address\.port_value: value must be less than or equal to 65535/],
  ['empty-cluster-name.json', /resources\[0\]\.name: value length must be at least 1 runes \[envoy\.config\.cluster\.v3\.Cluster\]/],
  // Inside typed_config (an Any): go-control-plane's ValidateAll alone does not look there.
  ['empty-route-cluster.yaml', /typed_config\.route_config\.virtual_hosts\[0\]\.routes\[1\]\.route\.cluster: value length must be at least 1 runes/],
  ['unknown-type.yaml', /resources\[0\]\.@type: unknown type "type\.googleapis\.com\/envoy\.api\.v2\.Listener"/],
  ['missing-typed-config.yaml', /http_filters\[0\]\.typed_config: not set \(name "envoy\.filters\.http\.router"\)/],
  ['overlapping-filter-chains.yaml', /filter_chains\[1\]\.filter_chain_match: overlaps filter_chains\[0\] \(server_names "api\.example\.com"\)/],
  ['duplicate-domain.yaml', /virtual_hosts\[1\]\.domains\[0\]: domain "API\.example\.com" is also in virtual_hosts\[0\]\.domains\[0\]/],
  ['bad-regex.yaml', /safe_regex\.regex: not a valid RE2 regular expression/],
  ['deprecated-field.yaml', /safe_regex\.google_re2: field envoy\.type\.matcher\.v3\.RegexMatcher\.google_re2 is deprecated/],
  ['mixed-resource-types.yaml', /resources\[2\]: type type\.googleapis\.com\/envoy\.config\.route\.v3\.RouteConfiguration differs from resources\[0\]/],
];

for (const [file, expected] of cases) {
  test(`invalid: ${file}`, async () => {
    const r = await checkEnvoyConfig([invalid(file)]);
    assert.equal(r.ok, false, r.output);
    assert.match(r.output, expected);
    assert.match(r.output, new RegExp(`${file.replace(/\./g, '\\.')}: \\d+ errors`));
  });
}

test('one bad file among good ones fails the run and is named', async () => {
  const r = await checkEnvoyConfig([valid('lds.yaml'), invalid('port-out-of-range.yaml'), valid('cds.yaml')]);
  assert.equal(r.ok, false);
  assert.match(r.output, /lds\.yaml: ok/);
  assert.match(r.output, /cds\.yaml: ok/);
  assert.match(r.output, /port-out-of-range\.yaml: error: /);
});

test('-allow-deprecated turns a deprecated field into a warning', async () => {
  const r = await checkEnvoyConfig([invalid('deprecated-field.yaml')], ['-allow-deprecated']);
  assert.ok(r.ok, r.output);
  assert.match(r.output, /warning: .*google_re2 .*is deprecated/);
});

test('-type forces the message type', async () => {
  // A listener file read as a bootstrap: "resources" is not a Bootstrap field.
  const r = await checkEnvoyConfig([valid('lds.yaml')], ['-type', 'bootstrap']);
  assert.equal(r.ok, false);
  assert.match(r.output, /resources: unknown field "resources" in envoy\.config\.bootstrap\.v3\.Bootstrap/);
});
