/**
 * `clawker firewall add | remove | list | refresh | reload` end to end: the CLI bundled as users get
 * it (into a temporary directory, so that tests running in parallel never share a half-written
 * bundle), a store in a temporary directory, arguments passed as arrays (no shell).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildSync } from 'esbuild';

const ROOT = join(__dirname, '..', '..');
const made: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-rules-cli-'));
  made.push(dir);
  return dir;
};
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

let CLI = '';
before(() => {
  CLI = join(tempDir(), 'cli.js');
  buildSync({ entryPoints: [join(ROOT, 'src', 'cli', 'main.ts')], bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: CLI, logLevel: 'error', external: ['*.node'] });
});

/** A project directory with its own store; `run` is the CLI there (no CLAWKER_DATA_DIR unless given). */
function workspace(yaml?: string) {
  const cwd = tempDir();
  const data = join(cwd, 'data');
  if (yaml !== undefined) writeFileSync(join(cwd, '.clawker.yaml'), yaml);
  const env = { ...process.env, CLAWKER_DATA_DIR: data };
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd, env, encoding: 'utf8' });
  const storeFile = join(data, 'firewall', 'rules.json');
  const stored = () => JSON.parse(readFileSync(storeFile, 'utf8')) as { version: number; rules: Record<string, unknown>[] };
  return { cwd, data, run, storeFile, stored };
}

interface ListedJson {
  store: string;
  projectFile: string | null;
  rules: { origin: string; dst: string; proto: string; port: string; action: string; path_rules?: unknown[]; path_default?: string; alsoInProjectFile?: boolean }[];
}

describe('add and remove, as the spec\'s "Blocked domains" section uses them', () => {
  test('add DOMAIN stores an https allow rule (0600) and list shows it as runtime', () => {
    const w = workspace();
    const r = w.run('firewall', 'add', 'api.openai.com');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'Added api.openai.com https:443 allow\n');
    assert.match(r.stderr, /saved in .*rules\.json; the firewall is not running, so the change applies when it starts/);
    assert.deepEqual(w.stored(), { version: 1, rules: [{ dst: 'api.openai.com', proto: 'https', port: '443', action: 'allow' }] });
    assert.equal(statSync(w.storeFile).mode & 0o777, 0o600);

    const list = w.run('firewall', 'list');
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^ORIGIN +DESTINATION +PORT +ACTION\n/);
    assert.match(list.stdout, /^system +api\.anthropic\.com +https:443 +allow$/m);
    assert.match(list.stdout, /^runtime +api\.openai\.com +https:443 +allow$/m);
    assert.match(list.stderr, /12 rules: 11 system, 0 project, 1 runtime/);
  });

  test('path rules accumulate; the same --path overwrites its action; remove --path is exact', () => {
    const w = workspace();
    assert.equal(w.run('firewall', 'add', 'api.example.com', '--path', '/v1', '--action', 'allow').status, 0);
    assert.equal(w.run('firewall', 'add', 'api.example.com', '--path', '/v2', '--action', 'deny').status, 0);
    assert.deepEqual(w.stored().rules[0]!.path_rules, [
      { path: '/v1', action: 'allow' },
      { path: '/v2', action: 'deny' },
    ]);

    const overwrite = w.run('firewall', 'add', 'api.example.com', '--path', '/v1', '--action', 'deny', '--methods', 'post,PUT');
    assert.equal(overwrite.status, 0, overwrite.stderr);
    assert.match(overwrite.stdout, /^Updated path rule on api\.example\.com https:443: '\/v1' allow → '\/v1' deny \[POST, PUT\]$/m);
    assert.deepEqual(w.stored().rules[0]!.path_rules, [
      { path: '/v1', action: 'deny', methods: ['POST', 'PUT'] },
      { path: '/v2', action: 'deny' },
    ]);

    const before = readFileSync(w.storeFile, 'utf8');
    const typo = w.run('firewall', 'remove', 'api.example.com', '--path', '/v');
    assert.equal(typo.status, 1);
    assert.match(typo.stderr, /has no path rule '\/v' \(paths are matched exactly as stored\): its path rules are '\/v1', '\/v2'/);
    assert.match(typo.stderr, /nothing was changed/);
    assert.equal(readFileSync(w.storeFile, 'utf8'), before);

    const drop = w.run('firewall', 'remove', 'api.example.com', '--path', '/v1');
    assert.equal(drop.status, 0, drop.stderr);
    assert.deepEqual(w.stored().rules[0]!.path_rules, [{ path: '/v2', action: 'deny' }]);

    assert.equal(w.run('firewall', 'remove', 'api.example.com').status, 0);
    assert.deepEqual(w.stored().rules, []);
  });

  test('a regex path is taken verbatim from the argument (the spec: quote it in a shell)', () => {
    const w = workspace();
    const r = w.run('firewall', 'add', 'api.github.com', '--path', '~/repos/(myorg|other)/?', '--action', 'allow');
    assert.equal(r.status, 0, r.stderr);
    const listed = JSON.parse(w.run('firewall', 'list', '--json').stdout) as ListedJson;
    const rule = listed.rules.find((x) => x.dst === 'api.github.com')!;
    assert.equal(rule.origin, 'runtime');
    assert.deepEqual(rule.path_rules, [{ path: '~/repos/(myorg|other)/?', action: 'allow' }]);
    assert.equal(rule.path_default, 'deny');
  });

  test('a bad rule fails the whole operation and changes nothing (exit 1)', () => {
    const w = workspace();
    assert.equal(w.run('firewall', 'add', 'a.example.com').status, 0);
    const before = readFileSync(w.storeFile, 'utf8');
    for (const args of [
      ['b.example.com', '--path', 'v1', '--action', 'allow'],
      ['b.example.com', '--path', '/', '--action', 'allow', '--methods', 'G ET'],
      ['b.example.com', '--port', '99999'],
      ['github.com', '--proto', 'ssh', '--path', '/', '--action', 'allow'],
      ['https://b.example.com/'],
    ]) {
      const r = w.run('firewall', 'add', ...args);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /clawker: nothing was changed\.\n$/);
      assert.equal(r.stdout, '');
    }
    assert.equal(readFileSync(w.storeFile, 'utf8'), before);
  });

  test('built-in rules: already allowed, and cannot be removed', () => {
    const w = workspace();
    const add = w.run('firewall', 'add', 'api.anthropic.com');
    assert.equal(add.status, 0);
    assert.match(add.stdout, /already allowed by a built-in rule; nothing changed/);
    const remove = w.run('firewall', 'remove', 'api.anthropic.com');
    assert.equal(remove.status, 1);
    assert.match(remove.stderr, /built-in rule, which cannot be removed/);
  });

  test('flag combinations that make no rule are usage errors (exit 2)', () => {
    const w = workspace();
    for (const [args, why] of [
      [['a.example.com', '--methods', 'GET'], /--methods narrows a path rule: give --path and --action too/],
      [['a.example.com', '--path', '/v1'], /--path needs --action allow or --action deny/],
      [['a.example.com', '--action', 'deny'], /--action is the action of a path rule/],
      [['a.example.com', '--bogus'], /unknown option '--bogus'/],
      [[], /missing required argument 'domain'/],
    ] as const) {
      const r = w.run('firewall', 'add', ...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, why);
    }
    assert.throws(() => statSync(w.storeFile), /ENOENT/, 'nothing was written');
  });
});

describe('refresh and list with a project file', () => {
  const yaml = [
    'security:',
    '  firewall:',
    '    add_domains: [pypi.org]',
    '    rules:',
    '      - dst: github.com',
    '        proto: ssh',
    '        port: "22"',
    '      - dst: api.example.com',
    '        path_rules:',
    '          - path: /v1',
    '            action: allow',
    '',
  ].join('\n');

  test('list merges built-in, project and runtime rules, each with its origin', () => {
    const w = workspace(yaml);
    assert.equal(w.run('firewall', 'add', 'runtime.example.com').status, 0);
    const r = w.run('firewall', 'list', '--json');
    assert.equal(r.status, 0, r.stderr);
    const listed = JSON.parse(r.stdout) as ListedJson;
    assert.equal(listed.projectFile, '.clawker.yaml');
    assert.equal(listed.store, w.storeFile);
    const origins = listed.rules.map((x) => `${x.origin} ${x.dst} ${x.proto}:${x.port}`);
    assert.deepEqual(origins.slice(11), ['project pypi.org https:443', 'project github.com ssh:22', 'project api.example.com https:443', 'runtime runtime.example.com https:443']);
    assert.ok(origins.slice(0, 11).every((o) => o.startsWith('system ')));
  });

  test('refresh adds and updates, never prunes; a second refresh changes nothing', () => {
    const w = workspace(yaml);
    assert.equal(w.run('firewall', 'add', 'api.example.com', '--path', '/runtime', '--action', 'allow').status, 0);
    const first = w.run('firewall', 'refresh');
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /^Added pypi\.org https:443$/m);
    assert.match(first.stdout, /^Added github\.com ssh:22$/m);
    assert.match(first.stderr, /synced \.clawker\.yaml: 2 added, 0 updated, 1 up to date\. What the store has beyond the file stays/);

    const again = w.run('firewall', 'refresh');
    assert.equal(again.status, 0);
    assert.match(again.stderr, /0 added, 0 updated, 3 up to date/);
    assert.doesNotMatch(again.stderr, /saved in/);

    // The file drops pypi.org and changes /v1 to deny: the change is synced, the removal is not.
    writeFileSync(join(w.cwd, '.clawker.yaml'), yaml.replace('[pypi.org]', '[]').replace('action: allow', 'action: deny'));
    const edited = w.run('firewall', 'refresh');
    assert.equal(edited.status, 0, edited.stderr);
    assert.match(edited.stdout, /^Updated api\.example\.com https:443$/m);
    assert.match(edited.stdout, /pypi\.org https:443 is not in the project file and stays/);
    const rules = w.stored().rules;
    assert.ok(rules.some((x) => x.dst === 'pypi.org'), 'refresh never prunes');
    // The runtime path rule was added onto the project's entry, so /v1 comes first.
    assert.deepEqual(rules.find((x) => x.dst === 'api.example.com')!.path_rules, [
      { path: '/v1', action: 'deny' },
      { path: '/runtime', action: 'allow' },
    ]);

    const listed = JSON.parse(w.run('firewall', 'list', '--json').stdout) as ListedJson;
    const apiRule = listed.rules.find((x) => x.dst === 'api.example.com')!;
    assert.equal(apiRule.origin, 'runtime');
    assert.equal(apiRule.alsoInProjectFile, true);
  });

  test('a project file with errors changes nothing: FILE:LINE:COL problems, exit 1', () => {
    const w = workspace(yaml);
    assert.equal(w.run('firewall', 'add', 'a.example.com').status, 0);
    const before = readFileSync(w.storeFile, 'utf8');
    writeFileSync(join(w.cwd, 'broken.yaml'), 'security:\n  firewall:\n    add_domains: [ok.example.com]\n    rules:\n      - dst: a.com\n        port: "99999"\n');
    const r = w.run('firewall', 'refresh', '--config', 'broken.yaml');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^broken\.yaml:6:15: error: port '99999'/m);
    assert.match(r.stderr, /nothing was synced and the rule store was not changed/);
    assert.equal(readFileSync(w.storeFile, 'utf8'), before);

    const none = workspace().run('firewall', 'refresh');
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no \.clawker\.yaml or \.clawker\/clawker\.yaml in .*; pass --config FILE/);
  });
});

describe('the store itself', () => {
  test('--store selects the store over CLAWKER_DATA_DIR', () => {
    const w = workspace();
    const other = join(tempDir(), 'other');
    assert.equal(w.run('firewall', 'add', 'a.example.com', '--store', other).status, 0);
    const listed = JSON.parse(w.run('firewall', 'list', '--json', '--store', other).stdout) as ListedJson;
    assert.equal(listed.store, join(other, 'firewall', 'rules.json'));
    assert.ok(listed.rules.some((x) => x.dst === 'a.example.com'));
    assert.throws(() => statSync(w.storeFile), /ENOENT/);
  });

  test('a damaged store is reported with the way back (exit 2) and left as it is', () => {
    const w = workspace();
    assert.equal(w.run('firewall', 'add', 'a.example.com').status, 0);
    assert.equal(w.run('firewall', 'add', 'b.example.com').status, 0);
    writeFileSync(w.storeFile, '{"version": 1, "rules": [{"dst": "a.exam');
    for (const args of [['add', 'c.example.com'], ['list'], ['remove', 'a.example.com']]) {
      const r = w.run('firewall', ...args);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, /the rule store .*rules\.json is damaged: it is not valid JSON/);
      assert.match(r.stderr, /cp .*rules\.json\.bak .*rules\.json/);
    }
    assert.equal(readFileSync(w.storeFile, 'utf8'), '{"version": 1, "rules": [{"dst": "a.exam');
  });

  test('reload needs the running firewall stack: exit 2, nothing faked', () => {
    const r = workspace().run('firewall', 'reload');
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /the firewall is not running, so there is nothing to reload; nothing was done/);
  });

  test('adds from parallel processes are all kept', async () => {
    const w = workspace();
    const env = { ...process.env, CLAWKER_DATA_DIR: w.data };
    const codes = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) =>
          new Promise<number | null>((resolve) => {
            const p = spawn(process.execPath, [CLI, 'firewall', 'add', `d${i}.example.com`], { cwd: w.cwd, env, stdio: 'ignore' });
            p.on('exit', resolve);
          }),
      ),
    );
    assert.deepEqual(codes, Array(8).fill(0));
    assert.deepEqual(w.stored().rules.map((r) => r.dst).sort(), Array.from({ length: 8 }, (_, i) => `d${i}.example.com`));
  });
});
