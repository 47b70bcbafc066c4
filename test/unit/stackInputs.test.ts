/**
 * The stack's inputs cross to the engine through Docker, never a shared folder: the host reads its
 * rule store and CA (creating the CA, and the data dir, owned by the user), the control plane
 * checks what it is sent before it replaces its last good copy, and never makes a CA of its own.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { startApi } from '../../src/controlplane/api';
import type { ControlPlane } from '../../src/controlplane/controlPlane';
import { adoptStackInputs, parseStackInputs, StackInputsError } from '../../src/controlplane/stackInputs';
import { addRule } from '../../src/core/firewall/runtimeRules';
import type { StackInputs } from '../../src/core/stack/controlPlaneApi';
import { LABEL_DATA_DIR } from '../../src/core/stack/labels';
import { stackNames } from '../../src/core/stack/stackNames';
import { loadCa, loadOrCreateCa } from '../../src/platform/caStore';
import { ControlPlaneClient, ControlPlaneRequestError } from '../../src/platform/controlPlaneClient';
import { UnixSocketTransport } from '../../src/platform/controlPlaneTransport';
import { ensureStackVolumes } from '../../src/platform/docker/stackVolumes';
import { RuleStore, RuleStoreError } from '../../src/platform/ruleStore';
import { dataDirId, readStackInputs, stackInputEntries } from '../../src/platform/stackInputs';

const dir = mkdtempSync(join(tmpdir(), 'clawker-stack-inputs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (what: string): string => join(dir, `${what}-${n++}`);

async function hostWithRule(domain: string): Promise<{ dataDir: string; inputs: StackInputs }> {
  const dataDir = fresh('host');
  const outcome = await new RuleStore(dataDir).update((s) => addRule(s, { dst: domain }));
  assert.ok(outcome.ok);
  return { dataDir, inputs: await readStackInputs(dataDir) };
}

describe("the host's side", () => {
  test('a new data dir: the CA is created in it (0700, the user\'s) and an empty store is sent as such', async () => {
    const dataDir = fresh('new');
    const inputs = await readStackInputs(dataDir);
    assert.equal(statSync(join(dataDir, 'firewall', 'ca')).mode & 0o777, 0o700);
    assert.equal(statSync(dataDir).uid, process.getuid!());
    assert.deepEqual(JSON.parse(inputs.rules), { version: 1, rules: [] });
    assert.equal(inputs.ca.certificate, readFileSync(join(dataDir, 'firewall', 'ca', 'ca.pem'), 'utf8'));
    assert.equal(inputs.ca.key, readFileSync(join(dataDir, 'firewall', 'ca', 'ca-key.pem'), 'utf8'));
    assert.equal(inputs.ca.leafKey, readFileSync(join(dataDir, 'firewall', 'ca', 'leaf-key.pem'), 'utf8'));
    assert.deepEqual(await readStackInputs(dataDir), inputs, 'read again: the same CA, not a new one');
  });

  test('the store is sent verbatim', async () => {
    const { dataDir, inputs } = await hostWithRule('api.example.com');
    assert.equal(inputs.rules, readFileSync(new RuleStore(dataDir).file, 'utf8'));
    assert.match(inputs.rules, /api\.example\.com/);
  });

  test('a damaged store is refused on the host, naming the host file and its recovery', async () => {
    const { dataDir } = await hostWithRule('a.example.com');
    const store = new RuleStore(dataDir);
    writeFileSync(store.file, '{"version": 1, "rules": [');
    await assert.rejects(readStackInputs(dataDir), (e: unknown) => e instanceof RuleStoreError && e.message.includes(`the rule store ${store.file} is damaged`));
  });

  test('as archive entries: relative to the control plane data dir, owned by its root, keys 0600', async () => {
    const { inputs } = await hostWithRule('a.example.com');
    const entries = stackInputEntries(inputs);
    assert.deepEqual(
      entries.map((e) => [e.path, e.type, e.mode.toString(8)]),
      [
        ['firewall', 'directory', '700'],
        ['firewall/ca', 'directory', '700'],
        ['firewall/ca/leaf-key.pem', 'file', '600'],
        ['firewall/ca/ca-key.pem', 'file', '600'],
        ['firewall/ca/ca.pem', 'file', '644'],
        ['firewall/rules.json', 'file', '600'],
      ],
    );
    assert.ok(entries.every((e) => e.uid === 0 && e.gid === 0));
    assert.equal(entries.find((e) => e.path === 'firewall/rules.json')!.content, inputs.rules);
  });

  test('the data dir is named to the engine by a hash of its path only', () => {
    assert.match(dataDirId('/home/ada/.local/share/clawker'), /^[0-9a-f]{16}$/);
    assert.equal(dataDirId('/home/ada/x/../data'), dataDirId('/home/ada/data'));
    assert.notEqual(dataDirId('/home/ada/data'), dataDirId('/home/bob/data'));
  });
});

describe("the control plane's copy", () => {
  test('adopted into an empty data dir: the CA loads as the host\'s; a second send of the same changes nothing', async () => {
    const { dataDir, inputs } = await hostWithRule('a.example.com');
    const cp = fresh('cp');
    assert.equal(adoptStackInputs(cp, inputs).length, 4);
    const host = (await loadCa(join(dataDir, 'firewall', 'ca'))).ca.certificate.fingerprint256;
    assert.equal((await loadCa(join(cp, 'firewall', 'ca'))).ca.certificate.fingerprint256, host);
    assert.equal(readFileSync(join(cp, 'firewall', 'rules.json'), 'utf8'), inputs.rules);
    assert.equal(statSync(join(cp, 'firewall', 'ca', 'ca-key.pem')).mode & 0o777, 0o600);
    assert.deepEqual(adoptStackInputs(cp, inputs), []);
    const next = await hostWithRule('b.example.com');
    assert.deepEqual(adoptStackInputs(cp, { ...inputs, rules: next.inputs.rules }), [join(cp, 'firewall', 'rules.json')], 'only the store changed');
  });

  const refusals: [string, (i: StackInputs) => StackInputs, RegExp][] = [
    ['a truncated store', (i) => ({ ...i, rules: i.rules.slice(0, 20) }), /not valid JSON/],
    ['a store with a rule that cannot be applied', (i) => ({ ...i, rules: JSON.stringify({ version: 1, rules: [{ dst: 'a.example.com', proto: 'gopher' }] }) }), /cannot be applied/],
    ['a CA key that is not the certificate\'s', (i) => ({ ...i, ca: { ...i.ca, key: i.ca.leafKey } }), /the CA sent cannot be used/],
    ['a leaf key that is no key', (i) => ({ ...i, ca: { ...i.ca, leafKey: 'not a key' } }), /the leaf key sent cannot be used/],
  ];
  for (const [what, damage, message] of refusals) {
    test(`${what} is refused whole: the last good copy stays`, async () => {
      const { inputs } = await hostWithRule('a.example.com');
      const cp = fresh('cp');
      adoptStackInputs(cp, inputs);
      const before = ['rules.json', 'ca/ca.pem', 'ca/ca-key.pem', 'ca/leaf-key.pem'].map((f) => readFileSync(join(cp, 'firewall', f), 'utf8'));
      assert.throws(() => adoptStackInputs(cp, damage(inputs)), (e: unknown) => e instanceof StackInputsError && message.test(e.message));
      assert.deepEqual(['rules.json', 'ca/ca.pem', 'ca/ca-key.pem', 'ca/leaf-key.pem'].map((f) => readFileSync(join(cp, 'firewall', f), 'utf8')), before);
    });
  }

  test('the control plane never makes a CA: an empty directory is an error, and stays empty', async () => {
    const caDir = join(fresh('cp'), 'firewall', 'ca');
    await assert.rejects(loadCa(caDir), /no CA here; the host's CA is copied in when the stack starts/);
    assert.ok(!existsSync(caDir));
    await loadOrCreateCa(caDir);
    await loadCa(caDir);
  });

  test('a body that is not StackInputs is named', () => {
    for (const body of [null, 'text', {}, { rules: '{}' }, { rules: 1, ca: { certificate: '', key: '', leafKey: '' } }, { rules: '', ca: { certificate: 1, key: '', leafKey: '' } }]) {
      assert.throws(() => parseStackInputs(body), StackInputsError, JSON.stringify(body));
    }
    assert.deepEqual(parseStackInputs({ rules: 'r', ca: { certificate: 'c', key: 'k', leafKey: 'l' }, extra: 1 }), { rules: 'r', ca: { certificate: 'c', key: 'k', leafKey: 'l' } });
  });
});

describe('POST /v1/reload carries the inputs', () => {
  test('through the API: adopted before the reload; refused with 400 and the reason; without a body, a plain reload', async () => {
    const cpDir = fresh('cp');
    const seen: (StackInputs | undefined)[] = [];
    const fake = {
      reload: async (inputs?: StackInputs) => {
        seen.push(inputs);
        if (inputs) adoptStackInputs(cpDir, inputs);
        return { rules: 1, routes: 0, corednsReloaded: false, millis: 1 };
      },
    } as unknown as ControlPlane;
    const socket = join(fresh('api'), 'api.sock');
    const server: Server = await startApi(socket, fake, { tail: () => [], subscribe: () => () => undefined }, { onDown: () => undefined });
    try {
      const client = new ControlPlaneClient(new UnixSocketTransport(socket), 5000);
      const { inputs } = await hostWithRule('a.example.com');
      await client.reload(inputs);
      assert.equal(readFileSync(join(cpDir, 'firewall', 'rules.json'), 'utf8'), inputs.rules);
      await client.reload();
      assert.deepEqual(seen, [inputs, undefined]);
      await assert.rejects(client.reload({ ...inputs, rules: '{' }), (e: unknown) => {
        assert.ok(e instanceof ControlPlaneRequestError);
        assert.equal(e.status, 400);
        assert.match(e.body.error, /^reload refused: the rule store sent is not valid JSON; the running firewall keeps its rules$/);
        return true;
      });
      // A store of many rules fits (the limit is for memory, not for rule counts).
      const big = { ...inputs, rules: JSON.stringify({ version: 1, rules: Array.from({ length: 20_000 }, (_, i) => ({ dst: `host${i}.example.com` })) }) };
      assert.ok(big.rules.length > 64 * 1024);
      await client.reload(big);
      client.close();
    } finally {
      server.close();
    }
  });
});

describe('the stack volumes', () => {
  class FakeVolumes {
    readonly volumes = new Map<string, Record<string, string>>();
    readonly calls: string[] = [];
    getVolume(name: string) {
      return {
        inspect: async () => {
          const labels = this.volumes.get(name);
          if (!labels) throw Object.assign(new Error('no such volume'), { statusCode: 404 });
          return { Name: name, Labels: labels };
        },
        remove: async () => {
          this.calls.push(`remove ${name}`);
          this.volumes.delete(name);
        },
      };
    }
    async createVolume(o: { Name: string; Labels: Record<string, string> }) {
      this.calls.push(`create ${o.Name}`);
      this.volumes.set(o.Name, o.Labels);
    }
  }
  const names = stackNames('clawker');

  test('created once with our labels; the state volume of another data dir is started afresh, saying so', async () => {
    const docker = new FakeVolumes();
    const said: string[] = [];
    await ensureStackVolumes(docker as unknown as Docker, names, 'aaaa', (m) => said.push(m));
    assert.deepEqual(docker.calls, ['create clawker-controlplane-state', 'create clawker-envoy-config', 'create clawker-coredns-config']);
    assert.equal(docker.volumes.get('clawker-controlplane-state')![LABEL_DATA_DIR], 'aaaa');
    assert.equal(docker.volumes.get('clawker-envoy-config')!['dev.clawker.stack'], 'clawker');
    docker.calls.length = 0;
    await ensureStackVolumes(docker as unknown as Docker, names, 'aaaa', (m) => said.push(m));
    assert.deepEqual(docker.calls, [], 'the same data dir keeps its state');
    await ensureStackVolumes(docker as unknown as Docker, names, 'bbbb', (m) => said.push(m));
    assert.deepEqual(docker.calls, ['remove clawker-controlplane-state', 'create clawker-controlplane-state']);
    assert.equal(docker.volumes.get('clawker-controlplane-state')![LABEL_DATA_DIR], 'bbbb');
    assert.deepEqual(said, ['volume clawker-controlplane-state holds the state of a stack started from another data dir: starting from an empty state']);
  });
});
