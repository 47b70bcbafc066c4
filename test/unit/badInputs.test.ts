/**
 * A table of bad inputs: each must yield its own specific message, with the right severity, at the
 * line and column marked `‸` in the input.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/core/config/load';
import type { ConfigKind } from '../../src/core/config/schemas';
import type { ProblemCode, Severity } from '../../src/core/problems';
import { domainsYaml, ruleYaml, unmark } from '../helpers/marked';

interface Case {
  readonly name: string;
  readonly yaml: string;
  readonly severity: Severity;
  readonly code: ProblemCode;
  /** Words the message must contain: what is wrong and what to do. */
  readonly says: readonly (string | RegExp)[];
  readonly kind?: ConfigKind;
  /** Whether the file as a whole must fail to load (any error does). */
  readonly fails?: boolean;
}

const pr = (...lines: string[]) => ['path_rules:', ...lines.map((l, i) => `${i === 0 ? '  - ' : '    '}${l}`)];

const CASES: Case[] = [
  // paths
  { name: 'literal path without leading slash', yaml: ruleYaml('dst: api.example.com', ...pr('path: ‸v1/chat', 'action: allow')), severity: 'error', code: 'path-missing-slash', says: ["must start with '/'", "'/v1/chat'"] },
  { name: 'regex written without ~ or slash', yaml: ruleYaml('dst: api.example.com', ...pr('path: ‸"repos/(a|b)"', 'action: allow')), severity: 'error', code: 'path-missing-slash', says: ['regular expression', "'~/repos/(a|b)'"] },
  { name: 'literal with characters invalid in a URL path', yaml: ruleYaml('dst: api.example.com', ...pr('path: ‸"/repos/(a|b)"', 'action: allow')), severity: 'error', code: 'path-invalid-char', says: ["'|'", 'cannot appear in a URL path', "'~/repos/(a|b)'"] },
  { name: 'literal with a space', yaml: ruleYaml('dst: api.example.com', ...pr('path: ‸"/a b"', 'action: allow')), severity: 'error', code: 'path-invalid-char', says: ['(space)'] },
  { name: 'literal with a query mark', yaml: ruleYaml('dst: api.example.com', ...pr('path: ‸/repos/x/?', 'action: allow')), severity: 'error', code: 'path-invalid-char', says: ["'?'", "'~/repos/x/?'"] },
  { name: 'literal with a broken percent escape', yaml: ruleYaml('dst: api.example.com', ...pr('path: ‸/a%zz', 'action: allow')), severity: 'error', code: 'path-invalid-char', says: ["'%'"] },
  { name: 'regex not anchored at /', yaml: ruleYaml('dst: api.example.com', ...pr('path: ‸"~repos/x"', 'action: allow')), severity: 'error', code: 'path-regex-anchor', says: ["must start with '/' or '^/'", "'~/repos/x'"] },
  { name: 'regex that does not compile', yaml: ruleYaml('dst: api.example.com', ...pr('path: ‸"~/a(b"', 'action: allow')), severity: 'error', code: 'path-regex-invalid', says: ['does not compile as RE2', 'missing closing )'] },
  { name: 'regex lookahead is not RE2', yaml: ruleYaml('dst: api.example.com', ...pr('path: ‸"~/a(?=b)"', 'action: allow')), severity: 'error', code: 'path-regex-invalid', says: ['RE2', '(?='] },
  { name: 'regex backreference is not RE2', yaml: ruleYaml('dst: api.example.com', ...pr('path: ‸"~/(a)\\\\1"', 'action: allow')), severity: 'error', code: 'path-regex-invalid', says: ['RE2', 'escape'] },
  { name: 'empty path', yaml: ruleYaml('dst: api.example.com', ...pr('path: ‸""', 'action: allow')), severity: 'error', code: 'path-missing-slash', says: ["'path' is empty", "'/'"] },
  { name: 'literal that looks like a regex', yaml: ruleYaml('dst: api.example.com', ...pr('path: ‸"/v1/.*"', 'action: allow')), severity: 'warning', code: 'path-looks-like-regex', says: ['literally', "'~/v1/.*'"], fails: false },
  { name: 'duplicate path rule', yaml: ruleYaml('dst: api.example.com', ...pr('path: /v1', 'action: allow'), '  - path: ‸/v1', '    action: deny'), severity: 'warning', code: 'duplicate-path-rule', says: ['path_rules[0]', 'never takes effect'], fails: false },
  // ports
  { name: 'port zero', yaml: ruleYaml('dst: db.example.com', 'proto: tcp', 'port: ‸"0"'), severity: 'error', code: 'port-invalid', says: ['1 to 65535'] },
  { name: 'port above 65535', yaml: ruleYaml('dst: db.example.com', 'proto: tcp', 'port: ‸65536'), severity: 'error', code: 'port-invalid', says: ["'65536'", '1 to 65535'] },
  { name: 'port not a number', yaml: ruleYaml('dst: db.example.com', 'proto: tcp', 'port: ‸abc'), severity: 'error', code: 'port-invalid', says: ["'abc'"] },
  { name: 'port range backwards', yaml: ruleYaml('dst: db.example.com', 'proto: tcp', 'port: ‸"9100-9000"'), severity: 'error', code: 'port-invalid', says: ['backwards', '"9000-9100"'] },
  { name: 'port range missing its end', yaml: ruleYaml('dst: db.example.com', 'proto: tcp', 'port: ‸"9000-"'), severity: 'error', code: 'port-invalid', says: ['"LO-HI"'] },
  { name: 'port negative', yaml: ruleYaml('dst: db.example.com', 'proto: tcp', 'port: ‸"-1"'), severity: 'error', code: 'port-invalid', says: ['"LO-HI"'] },
  { name: 'tcp without a port', yaml: ruleYaml('dst: ‸db.example.com', 'proto: tcp'), severity: 'error', code: 'port-required', says: ["'tcp' has no default port", "set 'port'"] },
  { name: 'udp without a port', yaml: ruleYaml('dst: ‸ntp.example.com', 'proto: udp'), severity: 'error', code: 'port-required', says: ["'udp' has no default port"] },
  // protocols
  { name: 'protocol with invalid characters', yaml: ruleYaml('dst: a.example.com', 'proto: ‸"http s"'), severity: 'error', code: 'proto-invalid', says: ['not a protocol', 'https, http, tcp, ssh, ws, wss, udp'] },
  { name: 'legacy tls protocol', yaml: ruleYaml('dst: a.example.com', 'proto: ‸tls'), severity: 'info', code: 'proto-legacy-tls', says: ["read as 'https'"], fails: false },
  { name: 'path rules on ssh are ignored', yaml: ruleYaml('dst: github.com', 'proto: ssh', ...pr('path: /', 'action: allow', 'methods: [GET]')).replace('path_rules', '‸path_rules'), severity: 'warning', code: 'l7-fields-ignored', says: ["'path_rules' is ignored on 'ssh'"], fails: false },
  { name: 'path_default on tcp is ignored', yaml: ruleYaml('dst: db.example.com', 'proto: tcp', 'port: "5432"', '‸path_default: allow'), severity: 'warning', code: 'l7-fields-ignored', says: ["'path_default' is ignored on 'tcp'"], fails: false },
  // destinations
  { name: 'native IPv6 destination', yaml: ruleYaml('dst: ‸"2606:4700::1"'), severity: 'error', code: 'dst-ipv6', says: ['native IPv6', 'IPv4-only', 'hostname'] },
  { name: 'bracketed IPv6 destination', yaml: domainsYaml('‸"[2001:db8::5]"'), severity: 'error', code: 'dst-ipv6', says: ['native IPv6'] },
  { name: 'IPv4-mapped IPv6 destination', yaml: ruleYaml('dst: ‸"::ffff:10.1.2.3"', 'proto: tcp', 'port: "8080"'), severity: 'info', code: 'dst-ipv6', says: ['enforced as 10.1.2.3'], fails: false },
  { name: 'star wildcard', yaml: domainsYaml('‸"*.example.com"'), severity: 'error', code: 'dst-wildcard-star', says: ["leading dot", "'.example.com'"] },
  { name: 'URL instead of a host', yaml: ruleYaml('dst: ‸https://github.com/org/repo'), severity: 'error', code: 'dst-invalid', says: ["write 'github.com'", "'proto'"] },
  { name: 'host with a port', yaml: ruleYaml('dst: ‸github.com:22', 'proto: ssh'), severity: 'error', code: 'dst-invalid', says: ["'port: \"22\"'"] },
  { name: 'label ending with a hyphen', yaml: domainsYaml('‸bad-.example.com'), severity: 'error', code: 'dst-invalid', says: ["label 'bad-'"] },
  { name: 'label longer than 63', yaml: domainsYaml(`‸${'a'.repeat(64)}.example.com`), severity: 'error', code: 'dst-invalid', says: ['longer than 63'] },
  { name: 'wildcard over a top-level domain', yaml: domainsYaml('‸.com'), severity: 'error', code: 'dst-invalid', says: ["every domain under the top-level domain 'com'"] },
  { name: 'numbers that are not an IPv4 address', yaml: domainsYaml('‸"1.2.3"'), severity: 'error', code: 'dst-invalid', says: ['neither a domain name nor a valid IPv4 address'] },
  { name: 'empty destination', yaml: ruleYaml('dst: ‸""'), severity: 'error', code: 'dst-invalid', says: ["'dst' is empty"] },
  { name: 'CIDR deny cannot be enforced', yaml: ruleYaml('dst: ‸10.0.0.0/8', 'proto: tcp', 'port: "22"', 'action: deny'), severity: 'error', code: 'dst-cidr', says: ['CIDR', 'let that traffic through'] },
  { name: 'CIDR allow is ignored, fail-closed', yaml: ruleYaml('dst: ‸10.0.0.0/8', 'proto: tcp', 'port: "22"'), severity: 'warning', code: 'dst-cidr', says: ['CIDR', 'stays blocked'], fails: false },
  // rule shape (schema)
  { name: 'rule without dst', yaml: ruleYaml('‸proto: https'), severity: 'error', code: 'schema', says: ["missing 'dst'"] },
  { name: 'invalid action', yaml: ruleYaml('dst: a.example.com', 'action: ‸permit'), severity: 'error', code: 'schema', says: ['must be one of allow, deny', "'permit'"] },
  { name: 'path rule without action', yaml: ruleYaml('dst: a.example.com', 'path_rules:', '  - ‸path: /v1'), severity: 'error', code: 'schema', says: ["missing 'action'"] },
  { name: 'misspelt rule key', yaml: ruleYaml('dst: a.example.com', '‸path_rule:', '  - path: /v1', '    action: allow'), severity: 'error', code: 'schema', says: ["did you mean 'path_rules'", 'loosen'] },
  { name: 'add_domains not a list', yaml: 'security:\n  firewall:\n    add_domains: ‸github.com\n', severity: 'error', code: 'schema', says: ['add_domains must be a list'] },
  { name: 'rule that is a string', yaml: 'security:\n  firewall:\n    rules:\n      - ‸github.com\n', severity: 'error', code: 'schema', says: ['rules[0] must be a mapping'] },
  { name: 'boolean written as text', yaml: 'security:\n  docker_socket: ‸"yes"\n', severity: 'error', code: 'schema', says: ['docker_socket must be true or false', "'yes'"] },
  { name: 'methods not a list', yaml: ruleYaml('dst: a.example.com', ...pr('path: /', 'action: allow', 'methods: ‸GET')), severity: 'error', code: 'schema', says: ['methods must be a list'] },
  // methods
  { name: 'lower-case method', yaml: ruleYaml('dst: a.example.com', ...pr('path: /', 'action: allow', 'methods: [‸get]')), severity: 'warning', code: 'method-invalid', says: ["read as 'GET'"], fails: false },
  { name: 'method with a space', yaml: ruleYaml('dst: a.example.com', ...pr('path: /', 'action: allow', 'methods: [‸"G ET"]')), severity: 'error', code: 'method-invalid', says: ['not an HTTP method'] },
  { name: 'misspelt method', yaml: ruleYaml('dst: a.example.com', ...pr('path: /', 'action: deny', 'methods: [‸GTE]')), severity: 'warning', code: 'method-unusual', says: ['not a standard HTTP method'], fails: false },
  // rule semantics
  { name: 'duplicate rule', yaml: ruleYaml('dst: a.example.com', 'proto: ssh') + '      - dst: ‸a.example.com\n        proto: ssh\n        port: "22"\n', severity: 'warning', code: 'duplicate-rule', says: ["'a.example.com:ssh:22'", 'line 4', 'ignored'], fails: false },
  { name: 'rule duplicating add_domains', yaml: 'security:\n  firewall:\n    add_domains: [api.github.com]\n    rules:\n      - dst: ‸api.github.com\n        path_rules:\n          - path: /\n            action: allow\n            methods: [GET]\n', severity: 'warning', code: 'duplicate-rule', says: ['line 3', 'ignored'], fails: false },
  { name: 'rule duplicating a built-in rule differently', yaml: ruleYaml('dst: ‸.claude.ai', 'path_default: allow', ...pr('path: /', 'action: allow')), severity: 'warning', code: 'duplicate-rule', says: ['built-in rule', 'cannot be replaced'], fails: false },
  { name: 'deny rule with path rules', yaml: ruleYaml('dst: a.example.com', 'action: deny', ...pr('path: /', 'action: allow')).replace('path_rules', '‸path_rules'), severity: 'warning', code: 'deny-with-path-rules', says: ['denies the destination entirely'], fails: false },
  { name: 'path_default without path rules', yaml: ruleYaml('dst: a.example.com', '‸path_default: deny'), severity: 'warning', code: 'path-default-without-rules', says: ['every path of a.example.com is allowed'], fails: false },
  // keys
  { name: 'misspelt top-level key', yaml: '‸securty:\n  docker_socket: false\n', severity: 'warning', code: 'unknown-key', says: ["did you mean 'security'"], fails: false },
  { name: 'clawker key not supported yet', yaml: 'build:\n  ‸stacks: [node]\n', severity: 'warning', code: 'unsupported-key', says: ["'build.stacks'", 'does not support yet'], fails: false },
  { name: 'legacy key clawker ignores', yaml: 'security:\n  firewall:\n    ‸enable: false\n', severity: 'warning', code: 'unsupported-key', says: ['settings.yaml'], fails: false },
  // YAML itself
  { name: 'bad indentation', yaml: 'security:\n  firewall:\n    add_domains:\n      - a.com\n     ‸rules: []\n', severity: 'error', code: 'yaml-syntax', says: ['YAML'] },
  { name: 'duplicate key', yaml: 'security:\n  docker_socket: false\n  ‸docker_socket: true\n', severity: 'error', code: 'yaml-syntax', says: ['unique'] },
  // settings.yaml
  { name: 'upstream resolver not an IPv4 address', kind: 'settings', yaml: 'firewall:\n  upstream_dns:\n    - ‸dns.example.com\n', severity: 'error', code: 'schema', says: ['upstream_dns[0]', 'IPv4'] },
  { name: 'firewall toggle as text', kind: 'settings', yaml: 'firewall:\n  enable: ‸"off"\n', severity: 'error', code: 'schema', says: ['firewall.enable must be true or false'] },
];

test(`the table has at least 40 bad inputs (${CASES.length})`, () => {
  assert.ok(CASES.length >= 40);
});

for (const c of CASES) {
  test(c.name, () => {
    const { text, line, col } = unmark(c.yaml);
    const result = loadConfig(c.kind ?? 'project', text);
    const matching = result.problems.filter((p) => p.code === c.code && p.severity === c.severity);
    const shown = result.problems.map((p) => `${result.lines.lineCol(p.range.start).line}:${result.lines.lineCol(p.range.start).col} ${p.severity} ${p.code} ${p.message}`).join('\n  ');
    assert.ok(matching.length > 0, `expected a ${c.severity} '${c.code}', got:\n  ${shown || '(none)'}`);
    const here = matching.find((p) => {
      const at = result.lines.lineCol(p.range.start);
      return at.line === line && at.col === col;
    });
    assert.ok(here, `expected it at ${line}:${col}, got:\n  ${shown}`);
    for (const words of c.says) {
      if (typeof words === 'string') assert.ok(here.message.includes(words), `message lacks "${words}": ${here.message}`);
      else assert.match(here.message, words);
    }
    assert.equal(result.failed, c.fails ?? c.severity === 'error', `failed=${result.failed} for:\n  ${shown}`);
  });
}
