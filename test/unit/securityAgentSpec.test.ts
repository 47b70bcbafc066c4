/**
 * Mutation-driven tests (issue 13) for the agent container spec's security checks and the rule
 * field checkers (destination, path, method, protocol, port, domain key): what each accepts, how it
 * normalises, and each refusal's exact message and quick fix.
 */
import { HOST_PROXY_AGENT_URL } from '../../src/core/agents/agentContract';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  agentContainerSpec,
  agentEnvironment,
  AgentSpecError,
  DEFAULT_PROJECT_SETTINGS,
  effectiveCapabilities,
  LINUX_CAPABILITIES,
  normalizeCapability,
} from '../../src/core/agents/agentContainerSpec';
import { agentSpecInput } from '../helpers/agentSpecInput';
import { checkDestination } from '../../src/core/firewall/destination';
import { checkMethod, checkPath, compileRe2 } from '../../src/core/firewall/pathMatch';
import { checkProtocol, isTcpLike } from '../../src/core/firewall/protocol';
import { checkPort } from '../../src/core/firewall/port';
import { assertDistinctDomainKeys, domainKey, formatDomainKey } from '../../src/core/firewall/domainKey';

const input = agentSpecInput;

/** Runs `fn`, expects an AgentSpecError, returns its message. */
function specError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AgentSpecError, `expected an AgentSpecError, got ${String(e)}`);
    assert.equal(e.name, 'AgentSpecError');
    return e.message;
  }
  assert.fail('expected an AgentSpecError');
}

// ---- capabilities ---------------------------------------------------------------------------------

// The 41 capabilities of Linux (capability.h, up to CHECKPOINT_RESTORE), as Docker names them.
const ALL_LINUX_CAPS = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
];
const REFUSED = ['NET_RAW', 'NET_ADMIN', 'SYS_ADMIN', 'BPF', 'PERFMON', 'SYS_MODULE', 'SYS_RAWIO', 'DAC_READ_SEARCH', 'MAC_ADMIN', 'MAC_OVERRIDE'];

describe('capabilities', () => {
  test('LINUX_CAPABILITIES is exactly the set of Linux capabilities', () => {
    assert.deepEqual([...LINUX_CAPABILITIES].sort(), [...ALL_LINUX_CAPS].sort());
  });

  test('every capability that is not refused can be added, and is the only extra one', () => {
    for (const cap of ALL_LINUX_CAPS.filter((c) => !REFUSED.includes(c))) {
      const r = effectiveCapabilities([cap.toLowerCase()]);
      if (['SETUID', 'SETGID', 'KILL'].includes(cap)) {
        assert.deepEqual(r, { capAdd: ['SETUID', 'SETGID', 'KILL'], warnings: [] }, cap);
      } else {
        assert.deepEqual(r.capAdd, ['SETUID', 'SETGID', 'KILL', cap], cap);
        assert.deepEqual(r.warnings, [`security.cap_add gives the agent container CAP_${cap} beyond the supervisor's own (SETUID, SETGID, KILL)`], cap);
      }
    }
  });

  test('every refused capability is refused, whatever its spelling', () => {
    for (const cap of REFUSED) {
      for (const spelling of [cap, `cap_${cap.toLowerCase()}`, ` CAP_${cap} `]) {
        const msg = specError(() => effectiveCapabilities([spelling]));
        assert.match(msg, new RegExp(`^security\\.cap_add: refused ${cap} \\(`), spelling);
      }
    }
  });

  test('normalizeCapability strips CAP_ only at the start', () => {
    assert.equal(normalizeCapability(' cap_chown '), 'CHOWN');
    assert.equal(normalizeCapability('XCAP_CHOWN'), 'XCAP_CHOWN');
    assert.equal(normalizeCapability('sys_cap_x'), 'SYS_CAP_X');
  });

  test('one refused capability: the message says "it"', () => {
    assert.equal(
      specError(() => effectiveCapabilities(['NET_RAW'])),
      'security.cap_add: refused NET_RAW (raw and packet sockets: hand-made packets past the firewall). Remove it from .clawker.yaml; agents never get these.',
    );
    assert.equal(
      specError(() => effectiveCapabilities(['FLY'])),
      'security.cap_add: refused "FLY" is not a Linux capability. Remove it from .clawker.yaml; agents never get these.',
    );
  });

  test('several refused capabilities: all named, and the message says "them"', () => {
    assert.equal(
      specError(() => effectiveCapabilities(['chown', 'ALL', 'cap_fly'])),
      'security.cap_add: refused ALL (every capability, including the ones below); "cap_fly" is not a Linux capability. Remove them from .clawker.yaml; agents never get these.',
    );
  });

  test('extra capabilities are listed once each in the warning, in order', () => {
    const r = effectiveCapabilities(['SYS_PTRACE', 'chown', 'CAP_SYS_PTRACE', 'kill']);
    assert.deepEqual(r.capAdd, ['SETUID', 'SETGID', 'KILL', 'SYS_PTRACE', 'CHOWN']);
    assert.deepEqual(r.warnings, ["security.cap_add gives the agent container CAP_SYS_PTRACE, CAP_CHOWN beyond the supervisor's own (SETUID, SETGID, KILL)"]);
  });

  test('a refused capability in the project refuses the container', () => {
    const msg = specError(() => agentContainerSpec(input({ settings: { ...DEFAULT_PROJECT_SETTINGS, capAdd: ['sys_admin'] } })));
    assert.match(msg, /^security\.cap_add: refused SYS_ADMIN /);
  });
});

// ---- environment ----------------------------------------------------------------------------------

describe('environment', () => {
  test('an image variable without "=" is not a variable', () => {
    const r = agentEnvironment({}, { X: '[${ABC}]' }, ['ABCD']);
    assert.deepEqual(r.env, ['X=[]']);
    assert.deepEqual(r.warnings, ["agent.env: X refers to ${ABC}, which the container does not set; it became ''"]);
  });

  test('image variables with a one-letter name and an "=" in the value are known', () => {
    const r = agentEnvironment({}, { X: '${A}|${B}' }, ['A=1', 'B=x=y', '=skip']);
    assert.deepEqual(r, { env: ['X=1|x=y'], warnings: [] });
  });

  test('one invalid name: "is not a variable name"', () => {
    assert.equal(
      specError(() => agentEnvironment({}, { '1X': 'a', OK: 'b' })),
      `agent.env: "1X" is not a variable name (letters, digits and '_', not starting with a digit)`,
    );
  });

  test('several invalid names: "are not variable names"', () => {
    assert.equal(
      specError(() => agentEnvironment({}, { '1X': 'a', 'A-B': 'b' })),
      `agent.env: "1X", "A-B" are not variable names (letters, digits and '_', not starting with a digit)`,
    );
  });

  test('a NUL character in a value is refused, also when it comes from ${NAME}', () => {
    assert.equal(specError(() => agentEnvironment({}, { TOKEN: 'a\0b' })), 'agent.env: TOKEN contains a NUL character');
    assert.equal(specError(() => agentEnvironment({}, { T2: '${Z}' }, ['Z=\0'])), 'agent.env: T2 contains a NUL character');
  });

  test('CLAWKER_* and supervisor-stripped variables are dropped with their warnings', () => {
    const r = agentEnvironment({ CLAWKER_AGENT: 'dev' }, { clawker_agent: 'x', LD_PRELOAD: '/x.so', A: '${CLAWKER_AGENT}' });
    assert.deepEqual(r.env, ['CLAWKER_AGENT=dev', 'A=dev']);
    assert.deepEqual(r.warnings, [
      'agent.env: clawker_agent ignored: CLAWKER_* variables are set by clawker',
      "agent.env: LD_PRELOAD ignored: it would run code in the root supervisor, so the image removes it before anything starts; set it in the agent's command instead (clawker run -- env LD_PRELOAD=… claude)",
    ]);
  });
});

// ---- workspace, socket, labels ------------------------------------------------------------------

describe('workspace', () => {
  const home = 'refusing to mount your home folder /home/me as the workspace: it holds your keys and credentials. Run clawker from the project folder (or pass --project-dir).';
  const root = 'refusing to mount / as the workspace: the agent could change every file of this machine. Run clawker from the project folder (or pass --project-dir).';

  test('a NUL character in the workspace path is refused', () => {
    assert.equal(specError(() => agentContainerSpec(input({ workspace: '/home/me/src\0x' }))), 'the workspace path contains a NUL character');
  });

  test('/ is refused however many slashes it is written with', () => {
    for (const ws of ['/', '//', '///']) assert.equal(specError(() => agentContainerSpec(input({ workspace: ws }))), root, ws);
  });

  test('the home folder is refused with trailing slashes on either side', () => {
    assert.equal(specError(() => agentContainerSpec(input({ workspace: '/home/me//' }))), home);
    assert.equal(specError(() => agentContainerSpec(input({ workspace: '/home/me', homeDir: '/home/me//' }))), home);
    assert.equal(specError(() => agentContainerSpec(input({ workspace: '/home/me/', homeDir: '/home/me/' }))), home);
  });

  test('a folder inside the home folder is fine', () => {
    assert.equal(agentContainerSpec(input({ workspace: '/home/me/src/', homeDir: '/home/me/' })).create.HostConfig.Mounts[0]!.Source, '/home/me/src/');
  });
});

describe('container', () => {
  test('the Docker socket: default host path, and its warning with the firewall on and off', () => {
    const settings = { ...DEFAULT_PROJECT_SETTINGS, dockerSocket: true };
    const on = agentContainerSpec(input({ settings }));
    assert.deepEqual(on.create.HostConfig.Mounts[1], { Type: 'bind', Source: '/var/run/docker.sock', Target: '/var/run/docker.sock', ReadOnly: false });
    assert.deepEqual(on.warnings, [
      `security.docker_socket: true mounts the Docker socket into ${on.name}: the agent has full control of your Docker daemon, and so of this machine, and can start containers the firewall does not cover. Set it to false unless the agent really needs Docker.`,
    ]);
    const off = agentContainerSpec(input({ settings, firewall: { enabled: false }, hostDockerSocket: '/run/user/1000/docker.sock' }));
    assert.equal(off.create.HostConfig.Mounts[1]!.Source, '/run/user/1000/docker.sock');
    assert.deepEqual(off.warnings, [
      `security.docker_socket: true mounts the Docker socket into ${off.name}: the agent has full control of your Docker daemon, and so of this machine. Set it to false unless the agent really needs Docker.`,
    ]);
  });

  test('with the host proxy, host.docker.internal is the engine\'s host-gateway and CLAWKER_HOST_PROXY names it; without, neither', () => {
    const on = agentContainerSpec(input({ hostProxyUrl: HOST_PROXY_AGENT_URL }));
    assert.deepEqual(on.create.HostConfig.ExtraHosts, ['host.docker.internal:host-gateway']);
    assert.ok(on.create.Env.includes('CLAWKER_HOST_PROXY=http://host.docker.internal:18374'), on.create.Env.join(' '));
    const off = agentContainerSpec(input({ hostProxyUrl: undefined }));
    assert.equal(off.create.HostConfig.ExtraHosts, undefined);
    assert.ok(!off.create.Env.some((e) => e.startsWith('CLAWKER_HOST_PROXY=')));
  });

  test('the workspace and firewall labels are ours, not the caller\'s', () => {
    const spec = agentContainerSpec(input({ extraLabels: { 'dev.clawker.workspace': '/elsewhere', 'dev.clawker.firewall': 'disabled', '': 'x' } }));
    assert.equal(spec.create.Labels['dev.clawker.workspace'], '/home/me/src/web');
    assert.equal(spec.create.Labels['dev.clawker.firewall'], 'enabled');
    const off = agentContainerSpec(input({ firewall: { enabled: false } }));
    assert.equal(off.create.Labels['dev.clawker.firewall'], 'disabled');
    assert.equal(off.create.HostConfig.NetworkMode, 'bridge');
    assert.equal(off.create.HostConfig.Dns, undefined);
    assert.equal(off.create.HostConfig.CgroupParent, undefined);
  });
});

// ---- destination ----------------------------------------------------------------------------------

describe('checkDestination', () => {
  test('a name with no domain', () => {
    assert.deepEqual(checkDestination('.'), { findings: [{ severity: 'error', code: 'dst-invalid', message: "'.' has no domain name." }] });
  });

  test('a name longer than 253 characters', () => {
    const long = `${'a'.repeat(60)}.`.repeat(4) + 'b'.repeat(10); // 254 characters
    assert.equal(long.length, 254);
    assert.deepEqual(checkDestination(long), { findings: [{ severity: 'error', code: 'dst-invalid', message: `'${long}' is longer than the 253 characters a domain name may have.` }] });
    // Trailing '..' is not a root dot: the length counts both dots.
    const dots = `${'a'.repeat(60)}.`.repeat(4) + 'b'.repeat(8) + '..';
    assert.equal(dots.length, 254);
    assert.equal(checkDestination(dots).findings[0]!.message, `'${dots}' is longer than the 253 characters a domain name may have.`);
  });

  test('a fully qualified name loses its root dot; two dots at the end do not', () => {
    assert.deepEqual(checkDestination('Example.COM.'), { value: { kind: 'domain', name: 'example.com', wildcard: false }, findings: [] });
    assert.equal(checkDestination('example.com..').findings[0]!.message, "'example.com..' has an empty label (two dots in a row, or a dot at the end).");
  });

  test('a URL: the fix is its host', () => {
    assert.deepEqual(checkDestination('https://api.example.com:8443/v1'), {
      findings: [
        {
          severity: 'error',
          code: 'dst-invalid',
          message: "'dst' takes a host, not a URL: write 'api.example.com:8443' and put the protocol in 'proto' and any path in 'path_rules'.",
          replaceWith: { title: "Use 'api.example.com:8443'", value: 'api.example.com:8443' },
        },
      ],
    });
  });

  test('brackets are stripped only when on both sides', () => {
    assert.match(checkDestination('[::1]').findings[0]!.message, /^'::1' is a native IPv6 address/);
    assert.equal(checkDestination('example.com]').value, undefined);
    assert.equal(checkDestination('[example.com').value, undefined);
    assert.match(checkDestination('example.com]').findings[0]!.message, /has the label 'com\]'/);
    assert.match(checkDestination('[example.com').findings[0]!.message, /has the label '\[example'/);
  });

  test('an IPv4-mapped IPv6 address is read as IPv4, with a fix', () => {
    assert.deepEqual(checkDestination('[::FFFF:10.1.2.3]'), {
      value: { kind: 'ipv4', address: '10.1.2.3' },
      findings: [
        {
          severity: 'info',
          code: 'dst-ipv6',
          message: "'::FFFF:10.1.2.3' is an IPv4-mapped IPv6 address and is enforced as 10.1.2.3.",
          replaceWith: { title: 'Write it as 10.1.2.3', value: '10.1.2.3' },
        },
      ],
    });
  });

  test('CIDR ranges: /0 to /32 are ranges; a longer prefix or a path is not a host', () => {
    for (const t of ['10.20.0.0/16', '192.168.100.0/24', '10.0.0.1/32', '0.0.0.0/0']) {
      assert.deepEqual(checkDestination(t), { findings: [{ severity: 'error', code: 'dst-cidr', message: `'${t}' is a CIDR range, which Clawker for VS Code does not enforce yet.` }] }, t);
    }
    for (const t of ['10.0.0.0/33', 'example.com/api', '300.0.0.0/8']) {
      assert.deepEqual(
        checkDestination(t),
        { findings: [{ severity: 'error', code: 'dst-invalid', message: `'${t}' is not a host: 'dst' takes one domain or IPv4 address, without a path or a CIDR range.` }] },
        t,
      );
    }
  });

  test('host:port: the fix is the host; the pattern is anchored at both ends', () => {
    assert.deepEqual(checkDestination('db.example.com:5432'), {
      findings: [
        {
          severity: 'error',
          code: 'dst-invalid',
          message: `'db.example.com:5432' includes a port: write the host in 'dst' and the port in 'port: "5432"'.`,
          replaceWith: { title: "Use 'db.example.com'", value: 'db.example.com' },
        },
      ],
    });
    assert.equal(checkDestination('a:b:5432').findings[0]!.replaceWith, undefined);
    assert.equal(checkDestination('a:b:5432').findings[0]!.message, "'a:b:5432' has the label 'a:b:5432': labels hold letters, digits, '-' and '_', and do not start or end with '-'.");
    assert.equal(checkDestination('db.example.com:5432x').findings[0]!.replaceWith, undefined);
  });

  test('*. wildcards: the fix is the leading-dot form', () => {
    assert.deepEqual(checkDestination('*.Example.com'), {
      findings: [
        {
          severity: 'error',
          code: 'dst-wildcard-star',
          message: "'*.Example.com' uses '*.'; wildcards are written with a leading dot: '.example.com' matches the domain and all its subdomains.",
          replaceWith: { title: "Use '.example.com'", value: '.example.com' },
        },
      ],
    });
  });

  test('internationalised names are matched in their ASCII form', () => {
    assert.deepEqual(checkDestination('Bücher.example'), {
      value: { kind: 'domain', name: 'xn--bcher-kva.example', wildcard: false },
      findings: [{ severity: 'info', code: 'dst-invalid', message: "'Bücher.example' is matched in its ASCII form 'xn--bcher-kva.example'." }],
    });
    assert.deepEqual(checkDestination('.bücher.example'), {
      value: { kind: 'domain', name: 'xn--bcher-kva.example', wildcard: true },
      findings: [{ severity: 'info', code: 'dst-invalid', message: "'.bücher.example' is matched in its ASCII form '.xn--bcher-kva.example'." }],
    });
  });

  test('an invalid internationalised name is refused', () => {
    assert.deepEqual(checkDestination('xn--ü.example'), {
      findings: [{ severity: 'error', code: 'dst-invalid', message: "'xn--ü.example' is not a valid internationalised domain name." }],
    });
  });
});

// ---- path and method ------------------------------------------------------------------------------

describe('checkPath', () => {
  test('percent-encoded octets are path characters; a lone % is not', () => {
    assert.deepEqual(checkPath('/a%2Fb%7e'), { value: { kind: 'prefix', prefix: '/a%2Fb%7e' }, findings: [] });
    assert.deepEqual(checkPath('/a%zz'), {
      findings: [
        {
          severity: 'error',
          code: 'path-invalid-char',
          message: "path '/a%zz' contains '%', which cannot appear in a URL path, so this prefix could never match. If it is a regular expression, write it with a leading '~': '~/a%zz'.",
          replaceWith: { title: "Make it the regex '~/a%zz'", value: '~/a%zz' },
        },
      ],
    });
  });

  test('each invalid character is named once, spaces spelt out', () => {
    assert.equal(
      checkPath('/a b c"d"').findings[0]!.message,
      `path '/a b c"d"' contains ' ' (space), '"', which cannot appear in a URL path, so this prefix could never match. If it is a regular expression, write it with a leading '~': '~/a b c"d"'.`,
    );
  });

  test('an invalid character in a pattern that does not compile: no fix', () => {
    assert.deepEqual(checkPath('/a b('), {
      findings: [
        {
          severity: 'error',
          code: 'path-invalid-char',
          message: "path '/a b(' contains ' ' (space), which cannot appear in a URL path, so this prefix could never match. If it is a regular expression, write it with a leading '~': '~/a b('.",
        },
      ],
    });
  });

  test("RE2's message without its 'error parsing regexp: ' prefix", () => {
    assert.deepEqual(compileRe2('/v1/(x'), { ok: false, message: 'missing closing ): `/v1/(x`' });
    assert.deepEqual(checkPath('~/v1/(x'), {
      findings: [
        {
          severity: 'error',
          code: 'path-regex-invalid',
          message: "the regex '~/v1/(x' does not compile as RE2: missing closing ): `/v1/(x`. See https://github.com/google/re2/wiki/Syntax.",
        },
      ],
    });
  });

  test('an unanchored regex: the fix anchors it at /', () => {
    assert.deepEqual(checkPath('~api/.*'), {
      findings: [
        {
          severity: 'error',
          code: 'path-regex-anchor',
          message: "the regex '~api/.*' must start with '/' or '^/' so that it is anchored at the start of the path: '~/api/.*'.",
          replaceWith: { title: "Anchor it: '~/api/.*'", value: '~/api/.*' },
        },
      ],
    });
    assert.equal(checkPath('~^api').findings[0]!.replaceWith!.value, '~^/api');
    assert.equal(checkPath('~x^').findings[0]!.replaceWith!.value, '~/x^');
    assert.deepEqual(checkPath('~^/api/.*'), { value: { kind: 'regex', pattern: '^/api/.*' }, findings: [] });
  });

  test("an empty path: the fix is '/'", () => {
    assert.deepEqual(checkPath(''), {
      findings: [{ severity: 'error', code: 'path-missing-slash', message: "'path' is empty: use '/' to match every path.", replaceWith: { title: "Use '/'", value: '/' } }],
    });
  });

  test('a path without its leading slash that looks like a regex', () => {
    const regexLike = (path: string, fixed: string) => ({
      findings: [
        {
          severity: 'error',
          code: 'path-missing-slash',
          message: `path '${path}' must start with '/'. It looks like a regular expression: regexes are written with a leading '~' and anchored at '/', e.g. '${fixed}'.`,
          replaceWith: { title: `Make it the regex '${fixed}'`, value: fixed },
        },
      ],
    });
    assert.deepEqual(checkPath('api/.*'), regexLike('api/.*', '~/api/.*'));
    assert.deepEqual(checkPath('a b'), regexLike('a b', '~/a b'));
    assert.deepEqual(checkPath('^api/v1'), regexLike('^api/v1', '~/api/v1'));
    assert.deepEqual(checkPath('^/api'), regexLike('^/api', '~/api'));
    assert.deepEqual(checkPath('^//api'), regexLike('^//api', '~/api'));
    assert.deepEqual(checkPath('x^'), regexLike('x^', '~/x^'));
    // A pattern that does not compile: no fix.
    assert.equal(checkPath('api/.*(').findings[0]!.replaceWith, undefined);
    assert.match(checkPath('api/.*(').findings[0]!.message, /It looks like a regular expression/);
  });

  test('a literal path without its leading slash: the fix adds it', () => {
    assert.deepEqual(checkPath('api/v1'), {
      findings: [
        {
          severity: 'error',
          code: 'path-missing-slash',
          message: "path 'api/v1' must start with '/': a literal path is a prefix of the URL path, e.g. '/api/v1'.",
          replaceWith: { title: "Add the leading '/': '/api/v1'", value: '/api/v1' },
        },
      ],
    });
  });

  test('a prefix that looks like a regex: a warning, with the fix when it compiles', () => {
    assert.deepEqual(checkPath('/api/*'), {
      value: { kind: 'prefix', prefix: '/api/*' },
      findings: [
        {
          severity: 'warning',
          code: 'path-looks-like-regex',
          message: "path '/api/*' is matched literally as a prefix, character for character. If you meant a regular expression, write it with a leading '~': '~/api/*'.",
          replaceWith: { title: "Make it the regex '~/api/*'", value: '~/api/*' },
        },
      ],
    });
    assert.equal(checkPath('/a**').findings[0]!.replaceWith, undefined);
    assert.deepEqual(checkPath('/api/v1.2'), { value: { kind: 'prefix', prefix: '/api/v1.2' }, findings: [] });
  });
});

describe('checkMethod', () => {
  test('an upper-case standard method has no findings', () => {
    assert.deepEqual(checkMethod(' GET '), { value: 'GET', findings: [] });
  });

  test('a lower-case method: upper-cased, with a fix', () => {
    assert.deepEqual(checkMethod('post'), {
      value: 'POST',
      findings: [{ severity: 'warning', code: 'method-invalid', message: "HTTP methods are case-sensitive: 'post' is read as 'POST'.", replaceWith: { title: "Write 'POST'", value: 'POST' } }],
    });
  });

  test('an unusual method: a warning', () => {
    assert.deepEqual(checkMethod('FETCH'), {
      value: 'FETCH',
      findings: [{ severity: 'warning', code: 'method-unusual', message: "'FETCH' is not a standard HTTP method; check the spelling (e.g. GET, HEAD, POST, PUT, PATCH, DELETE)." }],
    });
  });
});

// ---- protocol and port ----------------------------------------------------------------------------

describe('checkProtocol', () => {
  test('trimmed and lower-cased', () => {
    assert.deepEqual(checkProtocol(' HTTPS '), { value: 'https', findings: [] });
    assert.deepEqual(checkProtocol('\tSSH\n'), { value: 'ssh', findings: [] });
  });

  test("'tls' is read as 'https', with a fix", () => {
    assert.deepEqual(checkProtocol(' TLS'), {
      value: 'https',
      findings: [{ severity: 'info', code: 'proto-legacy-tls', message: "'tls' is the legacy name of 'https' and is read as 'https'.", replaceWith: { title: "Replace 'tls' with 'https'", value: 'https' } }],
    });
  });

  test("empty means 'https'", () => {
    assert.deepEqual(checkProtocol(''), { value: 'https', findings: [] });
    assert.deepEqual(checkProtocol('   '), { value: 'https', findings: [] });
  });

  test('isTcpLike: everything but the HTTP family and UDP', () => {
    for (const p of ['https', 'http', 'ws', 'wss', 'udp']) assert.equal(isTcpLike(p), false, p);
    for (const p of ['tcp', 'ssh', 'postgres']) assert.equal(isTcpLike(p), true, p);
  });
});

describe('checkPort', () => {
  test('a number must be written in decimal digits', () => {
    for (const t of ['1e3', '0x50', '8.0', '+80']) {
      assert.deepEqual(checkPort(t, 'https'), { findings: [{ severity: 'error', code: 'port-invalid', message: `port '${t}' is not a port number from 1 to 65535 (a range is written "LO-HI").` }] }, t);
    }
    assert.deepEqual(checkPort('1e3-2000', 'tcp').findings[0]!.message, `port range '1e3-2000' must be "LO-HI" with both ends from 1 to 65535.`);
    assert.deepEqual(checkPort('1000-2e3', 'tcp').findings[0]!.message, `port range '1000-2e3' must be "LO-HI" with both ends from 1 to 65535.`);
  });

  test('ranges, with spaces around the dash, and a range of one port', () => {
    assert.deepEqual(checkPort('9000-9100', 'tcp'), { value: { lo: 9000, hi: 9100 }, findings: [] });
    assert.deepEqual(checkPort(' 9000 - 9100 ', 'tcp'), { value: { lo: 9000, hi: 9100 }, findings: [] });
    assert.deepEqual(checkPort('8080-8080', 'tcp'), { value: { lo: 8080, hi: 8080 }, findings: [] });
  });

  test('a backwards range: the fix swaps its ends', () => {
    assert.deepEqual(checkPort('9100-9000', 'tcp'), {
      findings: [{ severity: 'error', code: 'port-invalid', message: 'port range \'9100-9000\' runs backwards: write it "9000-9100".', replaceWith: { title: 'Write the range as 9000-9100', value: '9000-9100' } }],
    });
  });
});

// ---- domain keys ----------------------------------------------------------------------------------

describe('domain keys', () => {
  test('DEL (0x7f) is ASCII; 0x80 is not', () => {
    // FNV-1a 64 of the single byte 0x7f, by hand: (offset ^ 0x7f) * prime mod 2^64.
    const expected = ((0xcbf29ce484222325n ^ 0x7fn) * 0x100000001b3n) & 0xffffffffffffffffn;
    assert.equal(domainKey('\x7f'), expected);
    assert.throws(() => domainKey('a\x80'), { message: "domain keys are computed over ASCII names; 'a\x80' is not" });
  });

  test('formatDomainKey pads to 16 hex digits', () => {
    assert.equal(formatDomainKey(1n), '0x0000000000000001');
    assert.equal(formatDomainKey(0xabcn), '0x0000000000000abc');
  });

  test('a destination named twice is not a collision', () => {
    const keys = assertDistinctDomainKeys(['example.com', '.example.com', 'example.com']);
    assert.deepEqual([...keys.keys()], ['example.com', '.example.com']);
    assert.throws(() => assertDistinctDomainKeys(['a', 'b'], () => 7n), {
      message: "the destinations 'a' and 'b' have the same domain key 0x0000000000000007; refusing to build a policy in which one could use the other's routes",
    });
  });
});
