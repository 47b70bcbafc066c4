/** The language server, driven in-process over LSP: diagnostics, hover, completion, quick fixes. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DiagnosticSeverity } from 'vscode-languageserver-protocol';
import { applyEdits, LspTestClient } from '../helpers/lspClient';
import { unmark } from '../helpers/marked';

let lsp: LspTestClient;
let n = 0;
const uri = () => `file:///work/p${++n}/.clawker.yaml`;

before(async () => {
  lsp = new LspTestClient();
  await lsp.initialize();
});
after(() => lsp.dispose());

describe('diagnostics', () => {
  test('are published on open with exact ranges, severity, source and code', async () => {
    const { text, line, col } = unmark('security:\n  firewall:\n    rules:\n      - dst: api.example.com\n        path_rules:\n          - path: ‸v1/chat\n            action: allow\n');
    const diags = await lsp.open(uri(), text);
    assert.equal(diags.length, 1);
    const [d] = diags;
    assert.equal(d!.source, 'clawker');
    assert.equal(d!.code, 'path-missing-slash');
    assert.equal(d!.severity, DiagnosticSeverity.Error);
    assert.deepEqual(d!.range, { start: { line: line - 1, character: col - 1 }, end: { line: line - 1, character: col - 1 + 'v1/chat'.length } });
  });

  test('follow edits and clear when the problem is fixed', async () => {
    const u = uri();
    assert.equal((await lsp.open(u, 'security:\n  docker_socket: "yes"\n')).length, 1);
    assert.deepEqual(await lsp.change(u, 'security:\n  docker_socket: true\n'), []);
  });

  test('settings.yaml is checked against the settings schema', async () => {
    const diags = await lsp.open('file:///home/u/.config/clawker/settings.yaml', 'firewall:\n  enable: "off"\n');
    assert.equal(diags.length, 1);
    assert.match(diags[0]!.message as string, /firewall\.enable must be true or false/);
  });
});

describe('hover', () => {
  const text = 'security:\n  docker_socket: false\n  firewall:\n    rules:\n      - dst: github.com\n        proto: ssh\nbuild:\n  stacks: [node]\n';
  const u = `file:///work/hover/.clawker.yaml`;
  before(() => lsp.open(u, text));
  const value = async (line: number, character: number) => {
    const h = await lsp.hover(u, line, character);
    return h && typeof h.contents === 'object' && 'value' in h.contents ? h.contents.value : '';
  };

  test('on a key shows its path, description and default', async () => {
    const md = await value(1, 4);
    assert.match(md, /\*\*security\.docker_socket\*\*/);
    assert.match(md, /full control/);
    assert.match(md, /Default: `false`/);
  });
  test('inside a list item names the item path', async () => {
    assert.match(await value(4, 9), /\*\*security\.firewall\.rules\[\]\.dst\*\*[\s\S]*leading dot/);
  });
  test('on a value describes its key', async () => {
    assert.match(await value(5, 16), /\*\*security\.firewall\.rules\[\]\.proto\*\*[\s\S]*`tls`/);
  });
  test('on an unsupported key says so', async () => {
    assert.match(await value(7, 3), /not supported by Clawker for VS Code yet/);
  });
  test('on an unknown key there is none', async () => {
    await lsp.change(u, `${text}zzz: 1\n`);
    assert.equal(await lsp.hover(u, 8, 1), null);
  });
});

describe('completion', () => {
  const labels = async (text: string) => {
    const { text: t, line, col } = unmark(text);
    const u = uri();
    await lsp.open(u, t);
    return (await lsp.completion(u, line - 1, col - 1)).map((i) => i.label);
  };

  test('top-level keys', async () => {
    const got = await labels('‸');
    for (const k of ['security', 'agent', 'build', 'workspace', 'harnesses', 'name']) assert.ok(got.includes(k), `missing ${k} in ${got}`);
  });
  test('keys of a firewall rule', async () => {
    const got = await labels('security:\n  firewall:\n    rules:\n      - dst: a.com\n        ‸\n');
    assert.deepEqual([...got].sort(), ['action', 'dst', 'insecure_skip_tls_verify', 'path_default', 'path_rules', 'port', 'proto']);
  });
  test('protocol values', async () => {
    const got = await labels('security:\n  firewall:\n    rules:\n      - dst: a.com\n        proto: ‸\n');
    assert.deepEqual(got, ['https', 'http', 'tcp', 'ssh', 'ws', 'wss', 'udp']);
  });
  test('action enum values', async () => {
    assert.deepEqual(await labels('security:\n  firewall:\n    rules:\n      - dst: a.com\n        action: ‸\n'), ['allow', 'deny']);
  });
  test('methods in a flow list', async () => {
    const got = await labels('security:\n  firewall:\n    rules:\n      - dst: a.com\n        path_rules:\n          - path: /\n            action: allow\n            methods: [GET, ‸\n');
    assert.ok(got.includes('HEAD') && got.includes('DELETE'), String(got));
  });
  test('booleans', async () => {
    assert.deepEqual(await labels('security:\n  docker_socket: ‸\n'), ['true', 'false']);
  });
});

describe('quick fixes', () => {
  /** Opens `before`, applies the only fix titled `title`, and returns the edited text and its diagnostics. */
  const fix = async (before: string, title: RegExp) => {
    const u = uri();
    const diags = await lsp.open(u, before);
    const range = { start: { line: 0, character: 0 }, end: { line: before.split('\n').length, character: 0 } };
    const actions = await lsp.codeActions(u, range, diags);
    const chosen = actions.filter((a) => title.test(a.title));
    assert.equal(chosen.length, 1, `actions: ${actions.map((a) => a.title).join(' | ')}`);
    assert.equal(chosen[0]!.kind, 'quickfix');
    const after = applyEdits(before, chosen[0]!.edit!.changes![u]!);
    return { after, diagnostics: await lsp.change(u, after) };
  };

  test("'tls' becomes 'https', quotes kept", async () => {
    const { after, diagnostics } = await fix('security:\n  firewall:\n    rules:\n      - dst: a.com\n        proto: "tls"  # legacy\n', /Replace 'tls' with 'https'/);
    assert.equal(after, 'security:\n  firewall:\n    rules:\n      - dst: a.com\n        proto: "https"  # legacy\n');
    assert.deepEqual(diagnostics, []);
  });
  test("the missing '/' is added", async () => {
    const { after, diagnostics } = await fix('security:\n  firewall:\n    rules:\n      - dst: a.com\n        path_rules:\n          - path: v1/chat\n            action: allow\n', /Add the leading '\/'/);
    assert.equal(after, 'security:\n  firewall:\n    rules:\n      - dst: a.com\n        path_rules:\n          - path: /v1/chat\n            action: allow\n');
    assert.deepEqual(diagnostics, []);
  });
  test("a regex-looking literal becomes a '~' regex", async () => {
    const { after, diagnostics } = await fix('security:\n  firewall:\n    rules:\n      - dst: a.com\n        path_rules:\n          - path: /repos/(a|b)/?\n            action: allow\n', /Make it the regex/);
    assert.equal(after, 'security:\n  firewall:\n    rules:\n      - dst: a.com\n        path_rules:\n          - path: "~/repos/(a|b)/?"\n            action: allow\n');
    assert.deepEqual(diagnostics, []);
  });
  test('a duplicate rule is removed with its lines, comments elsewhere kept', async () => {
    const before = [
      'security:',
      '  firewall:',
      '    rules:',
      '      # git over ssh',
      '      - dst: github.com',
      '        proto: ssh',
      '      - dst: github.com',
      '        proto: ssh',
      '        port: "22"',
      '      - dst: gitlab.com  # keep',
      '        proto: ssh',
      '',
    ].join('\n');
    const { after, diagnostics } = await fix(before, /Remove the duplicate rule/);
    assert.equal(after, ['security:', '  firewall:', '    rules:', '      # git over ssh', '      - dst: github.com', '        proto: ssh', '      - dst: gitlab.com  # keep', '        proto: ssh', ''].join('\n'));
    assert.deepEqual(diagnostics, []);
  });
  test('a duplicate domain in add_domains is removed', async () => {
    const { after } = await fix('security:\n  firewall:\n    add_domains:\n      - github.com\n      - pypi.org\n      - github.com\n', /Remove the duplicate rule/);
    assert.equal(after, 'security:\n  firewall:\n    add_domains:\n      - github.com\n      - pypi.org\n');
  });
  test("'*.' wildcard becomes a leading dot", async () => {
    const { after, diagnostics } = await fix('security:\n  firewall:\n    add_domains:\n      - "*.example.com"\n', /Use '\.example\.com'/);
    assert.equal(after, 'security:\n  firewall:\n    add_domains:\n      - ".example.com"\n');
    assert.deepEqual(diagnostics, []);
  });
  test('a misspelt rule key is renamed', async () => {
    const { after, diagnostics } = await fix('security:\n  firewall:\n    rules:\n      - dst: a.com\n        path_rule:\n          - path: /\n            action: allow\n', /Rename to 'path_rules'/);
    assert.equal(after, 'security:\n  firewall:\n    rules:\n      - dst: a.com\n        path_rules:\n          - path: /\n            action: allow\n');
    assert.deepEqual(diagnostics, []);
  });
});
