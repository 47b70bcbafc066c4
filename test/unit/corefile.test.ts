/**
 * Rendered Corefiles, loaded by CoreDNS itself: images/coredns/cmd/corefile-check runs CoreDNS's
 * own parser, every directive's setup function and the server assembly of our build (standard
 * plugins + dnsbpf, in the server's directive order) without listening. So an unknown directive, a
 * template regex that does not compile or a dnsbpf with the wrong arguments fails here, naming
 * the file and line. Also runs the Go tests of images/coredns (the dnsbpf plugin, the directive
 * order, a real CoreDNS serving a Corefile of the renderer's shape).
 *
 * Needs Go (go.mod: go 1.26) and the Go module cache or proxy; without Go this test FAILS, never
 * skips. The checker is built once per source version into the OS temp directory.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import { Policy } from '../../src/core/policy/policy';
import { DEFAULT_DNS_GUARD, type DnsGuardSettings, settingsSchema } from '../../src/core/config/settingsSchema';
import { renderCorefile } from '../../src/core/render/corednsConfig';

const MODULE_DIR = resolve(__dirname, '..', '..', 'images', 'coredns');
const UPSTREAMS = ['1.1.1.2', '1.0.0.2'];

interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd?: string, env: NodeJS.ProcessEnv = process.env): Promise<ExecResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'ENOENT' && cmd === 'go') {
          reject(
            new Error(
              'Go is not installed (no `go` on PATH). images/coredns is a Go module (go 1.26, github.com/coredns/coredns); ' +
                'install Go and let it reach the Go module proxy once (or fill the module cache) to build the Corefile checker.',
            ),
          );
        } else reject(err);
        return;
      }
      resolvePromise({ code: err ? (err.code as number) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

// -mod=readonly: a test never rewrites go.mod/go.sum. -buildvcs=false: no git stamping.
const goEnv = { ...process.env, GOFLAGS: [process.env.GOFLAGS, '-mod=readonly', '-buildvcs=false'].filter(Boolean).join(' ') };

/** A hash of the module's non-test Go sources, so a changed checker is rebuilt and an unchanged one reused. */
function sourceHash(): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if ((entry.name.endsWith('.go') && !entry.name.endsWith('_test.go')) || entry.name === 'go.mod' || entry.name === 'go.sum') {
        h.update(relative(MODULE_DIR, path)).update('\0').update(readFileSync(path)).update('\0');
      }
    }
  };
  walk(MODULE_DIR);
  return h.digest('hex').slice(0, 16);
}

async function buildChecker(): Promise<string> {
  const dir = join(tmpdir(), 'clawker-corefile-check', sourceHash());
  const bin = join(dir, 'corefile-check');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const r = await run('go', ['build', '-o', tmp, './cmd/corefile-check'], MODULE_DIR, goEnv);
  if (r.code !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`go build of ${MODULE_DIR}/cmd/corefile-check failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  }
  renameSync(tmp, bin); // atomic: a concurrent build by another test process is harmless
  return bin;
}

function corefileFor(yaml: string | undefined): string {
  if (yaml === undefined) return renderCorefile(new Policy(), { upstreams: UPSTREAMS });
  const loaded = loadProject(yaml);
  assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
  return renderCorefile(new Policy({ project: loaded.rules }), { upstreams: UPSTREAMS });
}

const DENY_AND_WILDCARD = `
security:
  firewall:
    add_domains: [github.com, .example.org, api.example.org]
    rules:
      - dst: bad.example.org
        action: deny
      - dst: .internal.example.net
        action: deny
      - dst: .example.net
        proto: https
      - dst: 10.0.0.5
        proto: tcp
        port: "9000-9002"
`;

/** Server blocks as written: `NAME:53 {` at the start of a line. */
const blockCount = (corefile: string): number => corefile.match(/^\S+:53 \{$/gm)?.length ?? 0;

/** The 1-based line of the first line of `text` that contains `needle`. */
function lineOf(text: string, needle: string): number {
  const index = text.split('\n').findIndex((l) => l.includes(needle));
  assert.ok(index >= 0, `'${needle}' is not in the Corefile`);
  return index + 1;
}

let checker: string;
let work: string;

before(async () => {
  const t0 = Date.now();
  checker = await buildChecker();
  console.log(`corefile-check ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  work = mkdtempSync(join(tmpdir(), 'clawker-corefile-test-'));
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

async function check(files: Record<string, string>): Promise<ExecResult> {
  const paths = Object.entries(files).map(([name, text]) => {
    const path = join(work, name);
    writeFileSync(path, text);
    return path;
  });
  const r = await run(checker, paths);
  if (r.code !== 0 && r.code !== 1) throw new Error(`corefile-check exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r;
}

describe('rendered Corefiles load in CoreDNS', () => {
  const policies: Record<string, string | undefined> = {
    'builtin.Corefile': undefined,
    'current-python.Corefile': readFileSync(resolve(__dirname, '..', 'fixtures', 'clawker', 'current-python.clawker.yaml'), 'utf8'),
    'deny-and-wildcard.Corefile': DENY_AND_WILDCARD,
  };

  for (const [name, yaml] of Object.entries(policies)) {
    test(name, async () => {
      const corefile = corefileFor(yaml);
      assert.ok(corefile.includes('    dnsbpf '), 'the Corefile has dnsbpf directives to check');
      const r = await check({ [name]: corefile });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const blocks = blockCount(corefile);
      assert.match(r.stdout, new RegExp(`${name.replace(/\./g, '\\.')}: ok \\(${blocks} server blocks, ${blocks} zones\\)`));
    });
  }

  test('the deny-and-wildcard policy really has a deny zone and a wildcard zone', () => {
    const corefile = corefileFor(DENY_AND_WILDCARD);
    assert.ok(corefile.includes('dnsbpf - .example.org'), corefile);
    assert.ok(corefile.includes('dnsbpf .example.org .example.org'), corefile);
    assert.match(corefile, /^internal\.example\.net:53 \{\n {4}template ANY ANY \{\n {8}rcode NXDOMAIN/m);
  });
});

describe('broken Corefiles fail, naming the problem and its line', () => {
  const base = corefileFor(DENY_AND_WILDCARD);

  test('an unknown directive', async () => {
    const broken = base.replace('    dnsbpf github.com -', '    dnsbpff github.com -');
    const r = await check({ 'unknown.Corefile': broken });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, new RegExp(`unknown\\.Corefile: error: .*unknown\\.Corefile:${lineOf(broken, 'dnsbpff')} - Error during parsing: Unknown directive 'dnsbpff'`));
  });

  test('dnsbpf with one argument', async () => {
    const broken = base.replace('    dnsbpf github.com -', '    dnsbpf github.com');
    const r = await check({ 'dnsbpf-args.Corefile': broken });
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stdout,
      new RegExp(
        `dnsbpf-args\\.Corefile: error: plugin/dnsbpf: .*dnsbpf-args\\.Corefile:${lineOf(broken, '    dnsbpf github.com')} - Error during parsing: ` +
          `dnsbpf takes exactly 2 arguments, APEX and SUB \\(each a rule destination or '-'\\), got 1`,
      ),
    );
  });

  test('dnsbpf naming a destination that does not cover its zone', async () => {
    const broken = base.replace('    dnsbpf github.com -', '    dnsbpf .example.org -');
    const r = await check({ 'dnsbpf-zone.Corefile': broken });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /plugin\/dnsbpf: .* dnsbpf APEX '\.example\.org' does not cover the zone apex 'github\.com'/);
  });

  test('a template whose regex does not compile', async () => {
    const broken = base.replace('match "^.+\\.github\\.com\\.$"', 'match "^(.+\\.github\\.com\\.$"');
    assert.notEqual(broken, base);
    const r = await check({ 'regex.Corefile': broken });
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stdout,
      new RegExp(`regex\\.Corefile: error: plugin/template: .*regex\\.Corefile:${lineOf(broken, 'match "^(')} - Error during parsing: could not parse regex: .*missing closing \\)`),
    );
  });

  test('dnsguard with an unknown query type', async () => {
    const broken = base.replace('types A AAAA CNAME HTTPS', 'types A AAAA CNAME HTTPZ');
    assert.notEqual(broken, base);
    const r = await check({ 'guard-type.Corefile': broken });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, new RegExp(`guard-type\\.Corefile: error: plugin/dnsguard: .*guard-type\\.Corefile:${lineOf(broken, 'HTTPZ')} - Error during parsing: dnsguard: \`types\`: 'HTTPZ' is not a DNS query type`));
  });

  test('dnsguard with a label cap DNS cannot carry', async () => {
    const broken = base.replace('max_label 48', 'max_label 64');
    const r = await check({ 'guard-label.Corefile': broken });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /plugin\/dnsguard: .*`max_label 64`: want a whole number from 1 to 63/);
  });

  test('the same zone twice', async () => {
    const broken = `${base}\nGitHub.com:53 {\n    errors\n}\n`;
    const r = await check({ 'twice.Corefile': broken });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /twice\.Corefile: error: cannot serve dns:\/\/github\.com\.:53 - it is already defined/);
  });

  test('one bad file among good ones fails the run; the good ones still pass', async () => {
    const r = await check({ 'good.Corefile': base, 'bad.Corefile': base.replace('rcode NXDOMAIN', 'rcode NXDOMAINS') });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /good\.Corefile: ok/);
    assert.match(r.stdout, /bad\.Corefile: error: plugin\/template: .*unknown rcode NXDOMAINS/);
  });
});

test('the Go tests of images/coredns pass (dnsbpf plugin, directive order, CoreDNS end to end)', async () => {
  const r = await run('go', ['test', '-count=1', './...'], MODULE_DIR, goEnv);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const pkg of ['clawker.dev/coredns/plugin/dnsbpf', 'clawker.dev/coredns/plugin/dnsguard', 'clawker.dev/coredns/clawkerdns', 'clawker.dev/coredns/cmd/corefile-check']) {
    assert.match(r.stdout, new RegExp(`^ok\\s+${pkg.replace(/\./g, '\\.')}\\s`, 'm'), `${pkg} did not run:\n${r.stdout}`);
  }
});

describe('DNS exfiltration defences (firewall.dns) in the Corefile', () => {
  const ONE_ZONE = `
security:
  firewall:
    add_domains: [github.com]
    rules:
      - dst: bad.example.org
        action: deny
`;
  const policy = (): Policy => {
    const loaded = loadProject(ONE_ZONE);
    assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
    return new Policy({ project: loaded.rules });
  };
  /** The blocks of these zones, whole, in the Corefile's order (the built-in system zones are left out: they repeat github.com's shape). */
  const pick = (corefile: string): string =>
    [...corefile.matchAll(/^(\S+):53 \{\n[\s\S]*?\n\}$/gm)]
      .filter((m) => ['bad.example.org', 'github.com', 'host.docker.internal', '.'].includes(m[1]!))
      .map((m) => `${m[0]}\n`)
      .join('\n');
  const dnsSettings = (yaml: Record<string, unknown>): DnsGuardSettings => settingsSchema.parse({ firewall: { dns: yaml } }).firewall.dns;
  /** The server blocks of the Corefile for one allowed zone, one deny rule, Docker's name and the root. */
  const renderWhole = (dns?: DnsGuardSettings): string => renderCorefile(policy(), { upstreams: UPSTREAMS, ...(dns ? { dns } : {}) });
  const render = (dns?: DnsGuardSettings): string => pick(renderWhole(dns));

  const LOG = (zone: string, apex: string, sub: string): string[] => [
    `    log . "clawker-dns zone=${zone}. apex=${apex} sub=${sub} {proto} {remote} {port} {type} {name} {rcode}" {`,
    '        class denial',
    '    }',
  ];
  const FULL_GUARD = ['    dnsguard {', '        types A AAAA CNAME HTTPS', '        max_label 48', '        max_name 128', '        rate 50 100', '    }'];
  const RATE_GUARD = ['    dnsguard {', '        rate 50 100', '    }'];
  const expected = (forwarding: string[], local: string[]): string =>
    [
      'bad.example.org:53 {',
      '    template ANY ANY {',
      '        rcode NXDOMAIN',
      '    }',
      ...local,
      ...LOG('bad.example.org', 'deny-rule', 'no-rule'),
      '}',
      '',
      'github.com:53 {',
      ...forwarding,
      '    template ANY ANY {',
      '        match "^.+\\.github\\.com\\.$"',
      '        rcode NXDOMAIN',
      '        fallthrough',
      '    }',
      '    template IN AAAA {',
      '        rcode NOERROR',
      '    }',
      '    dnsbpf github.com -',
      '    forward . 1.1.1.2 1.0.0.2',
      ...LOG('github.com', 'forward', 'no-rule'),
      '}',
      '',
      'host.docker.internal:53 {',
      ...forwarding,
      '    template ANY ANY {',
      '        match "^.+\\.host\\.docker\\.internal\\.$"',
      '        rcode NXDOMAIN',
      '        fallthrough',
      '    }',
      '    template IN AAAA {',
      '        rcode NOERROR',
      '    }',
      '    forward . 127.0.0.11',
      ...LOG('host.docker.internal', 'forward', 'no-rule'),
      '}',
      '',
      '.:53 {',
      '    health :18902',
      '    errors',
      ...LOG('', 'no-rule', 'no-rule'),
      ...local,
      '    template ANY ANY {',
      '        rcode NXDOMAIN',
      '    }',
      '}',
      '',
    ].join('\n');

  test('on by default: every forwarding block refuses types, long labels and names and floods; local blocks only floods', () => {
    const settingsDefault = settingsSchema.parse({}).firewall.dns;
    assert.deepEqual(settingsDefault, { ...DEFAULT_DNS_GUARD, allowed_types: ['A', 'AAAA', 'CNAME', 'HTTPS'], query_rate: { per_second: 50, burst: 100 } });
    assert.equal(render(), expected(FULL_GUARD, RATE_GUARD));
    assert.equal(renderWhole(settingsDefault), renderWhole());
    const whole = renderWhole();
    const forwarding = whole.split('\n').filter((l) => l.startsWith('    forward . ')).length;
    assert.equal(whole.split('\n').filter((l) => l === '        types A AAAA CNAME HTTPS').length, forwarding, 'every forwarding block (system zones too) is guarded');
    assert.equal(whole.split('\n').filter((l) => l === '        rate 50 100').length, blockCount(whole), 'every block limits the rate');
  });

  test('enable: false renders no dnsguard at all (the Corefile of before the defences)', () => {
    const off = renderWhole(dnsSettings({ enable: false }));
    assert.equal(pick(off), expected([], []));
    assert.ok(!off.includes('dnsguard'));
  });

  test('each knob: set, or null (off); no rate leaves the local blocks without a guard', () => {
    const custom = render(dnsSettings({ allowed_types: ['A', 'AAAA', 'SRV', 'A'], max_label_length: null, max_name_length: 200, query_rate: { per_second: 5, burst: 7 } }));
    assert.equal(custom, expected(['    dnsguard {', '        types A AAAA SRV', '        max_name 200', '        rate 5 7', '    }'], ['    dnsguard {', '        rate 5 7', '    }']));
    const lengthsOnly = render(dnsSettings({ allowed_types: null, query_rate: null }));
    assert.equal(lengthsOnly, expected(['    dnsguard {', '        max_label 48', '        max_name 128', '    }'], []));
    const nothing = render(dnsSettings({ allowed_types: null, max_label_length: null, max_name_length: null, query_rate: null }));
    assert.equal(nothing, expected([], []));
  });

  test('the settings refuse values the guard cannot apply', () => {
    for (const dns of [
      { allowed_types: [] },
      { allowed_types: ['TXTX'] },
      { allowed_types: ['a'] },
      { max_label_length: 0 },
      { max_label_length: 64 },
      { max_name_length: 254 },
      { max_name_length: 12.5 },
      { query_rate: { per_second: 0, burst: 10 } },
      { query_rate: { per_second: 10 } },
      { query_rate: { per_second: 10, burst: 10, extra: 1 } },
      { enable: 'yes' },
    ]) {
      assert.equal(settingsSchema.safeParse({ firewall: { dns } }).success, false, JSON.stringify(dns));
    }
  });

  test('CoreDNS loads every rendering (default, custom, rate only, off)', async () => {
    const files = {
      'guard-default.Corefile': renderWhole(),
      'guard-custom.Corefile': renderWhole(dnsSettings({ allowed_types: ['A', 'SRV'], max_label_length: 63, max_name_length: 253, query_rate: { per_second: 1, burst: 1 } })),
      'guard-rate-only.Corefile': renderWhole(dnsSettings({ allowed_types: null, max_label_length: null, max_name_length: null })),
      'guard-off.Corefile': renderWhole(dnsSettings({ enable: false })),
    };
    const r = await check(files);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const [name, text] of Object.entries(files)) {
      const blocks = blockCount(text);
      assert.match(r.stdout, new RegExp(`${name.replace(/\./g, '\\.')}: ok \\(${blocks} server blocks, ${blocks} zones\\)`));
    }
  });
});
