// The agent user's ids (issue 14, item 5): the host user's on a local Linux engine, 1001 elsewhere and
// for root; carried by the image's build arguments, its tag, agentd's configuration and the files put
// into a new container.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readConfig } from '../../src/agentd/config';
import { AGENT_GID, AGENT_UID, HOST_PROXY_TOKEN_FILE } from '../../src/core/agents/agentContract';
import { agentImageBuildArgs } from '../../src/core/agents/agentImageInputs';
import { agentUserFor, DEFAULT_AGENT_USER } from '../../src/core/agents/agentUser';
import { sessionArchiveEntries } from '../../src/core/agents/lifecycle';
import { chooseTag } from '../../src/platform/docker/agentImage';

describe('which ids', () => {
  test("a local Linux engine: the host user's uid and gid", () => {
    assert.deepEqual(agentUserFor('linux-local', { uid: 1000, gid: 1000 }), { uid: 1000, gid: 1000 });
    assert.deepEqual(agentUserFor('linux-local', { uid: 1234, gid: 100 }), { uid: 1234, gid: 100 }, 'a shared group such as users');
  });

  test('never root: host root gets 1001, and a gid of 0 is replaced by the contract group', () => {
    assert.deepEqual(agentUserFor('linux-local', { uid: 0, gid: 0 }), { uid: AGENT_UID, gid: AGENT_GID });
    assert.deepEqual(agentUserFor('linux-local', { uid: 1000, gid: 0 }), { uid: 1000, gid: AGENT_GID });
  });

  test('engines in a VM or elsewhere keep 1001 (their file sharing maps owners); so does an unknown host user', () => {
    for (const kind of ['docker-desktop', 'orbstack', 'colima', 'remote'] as const) assert.deepEqual(agentUserFor(kind, { uid: 501, gid: 20 }), DEFAULT_AGENT_USER, kind);
    assert.deepEqual(agentUserFor('linux-local', undefined), DEFAULT_AGENT_USER);
    assert.deepEqual(agentUserFor(undefined, { uid: 1000, gid: 1000 }), DEFAULT_AGENT_USER);
  });
});

describe('where the ids go', () => {
  test("the image's build arguments", () => {
    const args = agentImageBuildArgs(undefined, { uid: 1000, gid: 1000 });
    assert.deepEqual([args.AGENT_UID, args.AGENT_GID], ['1000', '1000']);
    assert.deepEqual([agentImageBuildArgs().AGENT_UID, agentImageBuildArgs().AGENT_GID], [String(AGENT_UID), String(AGENT_GID)]);
  });

  test("the image's tag: one per agent user, the plain tag for the contract's; a tag given wins", () => {
    assert.equal(chooseTag(undefined), 'clawker-agent:latest');
    assert.equal(chooseTag(undefined, { uid: AGENT_UID, gid: AGENT_GID }), 'clawker-agent:latest');
    assert.equal(chooseTag(undefined, { uid: 1000, gid: 1000 }), 'clawker-agent:latest-uid1000-gid1000');
    assert.equal(chooseTag(undefined, { uid: 1000, gid: 100 }), 'clawker-agent:latest-uid1000-gid100');
    assert.equal(chooseTag('test-agent:e2e', { uid: 1000, gid: 1000 }), 'test-agent:e2e');
    assert.throws(() => chooseTag('bad tag'), /not an image tag/);
  });

  test("the host proxy token put into the container belongs to the agent user (mode 0400)", () => {
    const files = { caPem: 'ca', certificatePem: 'c', privateKeyPem: 'k', hostProxyToken: 't' };
    const token = sessionArchiveEntries(files, { uid: 1000, gid: 1000 }).find((e) => `/${e.path}` === HOST_PROXY_TOKEN_FILE)!;
    assert.deepEqual([token.uid, token.gid, token.mode], [1000, 1000, 0o400]);
  });

  test('agentd forks as the ids baked into the image, never as root', () => {
    const cfg = (env: Record<string, string>) => readConfig(['--', 'claude'], env);
    const ok = cfg({ CLAWKER_AGENTD_UID: '1000', CLAWKER_AGENTD_GID: '100' }) as { config: { uid: number; gid: number; commandEnv: Record<string, string> } };
    assert.deepEqual([ok.config.uid, ok.config.gid], [1000, 100]);
    assert.equal(ok.config.commandEnv.CLAWKER_AGENTD_UID, undefined, "agentd's own variables never reach the command");
    const plain = cfg({}) as { config: { uid: number; gid: number } };
    assert.deepEqual([plain.config.uid, plain.config.gid], [AGENT_UID, AGENT_GID]);
    assert.deepEqual(cfg({ CLAWKER_AGENTD_UID: '0' }), { error: 'CLAWKER_AGENTD_UID must be a user id from 1 to 4294967294' });
    assert.deepEqual(cfg({ CLAWKER_AGENTD_GID: '0' }), { error: 'CLAWKER_AGENTD_GID must be a group id from 1 to 4294967294' });
    for (const bad of ['-1', '1e3', ' 1000', '4294967295', 'root']) assert.ok('error' in cfg({ CLAWKER_AGENTD_UID: bad }), bad);
    assert.equal((cfg({ CLAWKER_AGENTD_UID: '4294967294' }) as { config: { uid: number } }).config.uid, 4294967294);
  });
});
