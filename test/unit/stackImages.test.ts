/**
 * The stack's images: which files each is built from for which engine architecture, which images a
 * stack runs and when one is built, used as named or left alone; the pins in their Dockerfiles; the
 * pull progress a person sees.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { agentImageInputsHash, dockerfileDefaultBase } from '../../src/core/agents/agentImageInputs';
import { PullProgress } from '../../src/core/engine/pullProgress';
import { DEFAULT_STACK_IMAGES } from '../../src/core/stack/containerSpecs';
import { engineArchOf, stackImageAction, stackImageHashScheme, stackImageSources, stackImagesFromEnv } from '../../src/core/stack/stackImages';

const ROOT = join(__dirname, '..', '..');
const dockerfile = (image: string): string => readFileSync(join(ROOT, 'images', image, 'Dockerfile'), 'utf8');
const baseDefault = (text: string): string | undefined => /^ARG BASE_IMAGE=(\S+)$/m.exec(text)?.[1];

test("the engine's architecture, as GET /version reports it, names the binaries' directory; others are refused", () => {
  for (const [reported, arch] of [
    ['amd64', 'amd64'],
    ['x86_64', 'amd64'],
    ['arm64', 'arm64'],
    ['aarch64', 'arm64'],
    ['AMD64', 'amd64'],
  ] as const) {
    assert.equal(engineArchOf(reported), arch, reported);
  }
  for (const other of ['arm', 's390x', 'ppc64le', 'riscv64', '', undefined]) assert.equal(engineArchOf(other), undefined, String(other));
});

test('each image is built from its Dockerfile and the binaries of the engine architecture, executables marked so', () => {
  assert.deepEqual(stackImageSources('controlplane', 'arm64'), [
    { context: 'Dockerfile', source: 'images/controlplane/Dockerfile', mode: 0o644 },
    { context: 'controlplane.js', source: 'dist/controlplane.js', mode: 0o644 },
    { context: 'bpfman', source: 'dist/engine/linux-arm64/bpfman', mode: 0o755 },
  ]);
  assert.deepEqual(stackImageSources('coredns', 'amd64'), [
    { context: 'Dockerfile', source: 'images/coredns/Dockerfile', mode: 0o644 },
    { context: 'coredns', source: 'dist/engine/linux-amd64/coredns', mode: 0o755 },
  ]);
  // What each Dockerfile COPYs from its context is exactly what is sent.
  for (const image of ['controlplane', 'coredns'] as const) {
    const copied = [...dockerfile(image).matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    assert.deepEqual(copied.sort(), stackImageSources(image, 'amd64').filter((s) => s.context !== 'Dockerfile').map((s) => s.context).sort(), image);
  }
});

test('the two images never share an inputs hash, even from the same files', () => {
  const files = [{ name: 'Dockerfile', content: Buffer.from('FROM scratch\n') }];
  const hashes = new Set(['controlplane', 'coredns'].map((image) => agentImageInputsHash({ scheme: stackImageHashScheme(image as 'coredns'), files, buildArgs: {} })));
  hashes.add(agentImageInputsHash({ files, buildArgs: {} }));
  assert.equal(hashes.size, 3);
});

test("the environment names a stack's images; an empty variable is no name", () => {
  assert.deepEqual(stackImagesFromEnv({}), { images: DEFAULT_STACK_IMAGES, named: { envoy: false, coredns: false, controlplane: false } });
  const chosen = stackImagesFromEnv({ CLAWKER_ENVOY_IMAGE: 'mirror/envoy:1', CLAWKER_COREDNS_IMAGE: '', CLAWKER_CONTROLPLANE_IMAGE: 'cp:e2e' });
  assert.deepEqual(chosen.images, { envoy: 'mirror/envoy:1', coredns: DEFAULT_STACK_IMAGES.coredns, controlplane: 'cp:e2e' });
  assert.deepEqual(chosen.named, { envoy: true, coredns: false, controlplane: true });
});

test('a default image is rebuilt when its inputs change; a named one is run as it is unless missing or asked to build', () => {
  const base = { exists: true, labelledHash: 'a', hash: 'a', force: false, building: false };
  assert.equal(stackImageAction({ ...base, named: false }), 'up-to-date');
  assert.equal(stackImageAction({ ...base, named: false, labelledHash: 'b' }), 'build');
  assert.equal(stackImageAction({ ...base, named: false, labelledHash: undefined }), 'build');
  assert.equal(stackImageAction({ ...base, named: false, exists: false }), 'build');
  assert.equal(stackImageAction({ ...base, named: false, force: true }), 'build');
  // Named (a test bed's, a mirror's): its own inputs are none of ours.
  assert.equal(stackImageAction({ ...base, named: true, labelledHash: 'b' }), 'as-named');
  assert.equal(stackImageAction({ ...base, named: true, exists: false }), 'build');
  assert.equal(stackImageAction({ ...base, named: true, force: true }), 'build');
  // `firewall build` treats it like a default tag.
  assert.equal(stackImageAction({ ...base, named: true, building: true, labelledHash: 'b' }), 'build');
  assert.equal(stackImageAction({ ...base, named: true, building: true }), 'up-to-date');
});

test('every base image and Envoy are pinned by digest; the control plane runs on the agent image’s Node 22 base; no TODO', () => {
  const digest = /@sha256:[0-9a-f]{64}$/;
  for (const image of ['agent', 'controlplane', 'coredns']) {
    assert.match(baseDefault(dockerfile(image)) ?? '', digest, `images/${image}/Dockerfile`);
    // What the builders pull (with progress) before a build on the default base.
    assert.equal(dockerfileDefaultBase(dockerfile(image)), baseDefault(dockerfile(image)));
  }
  assert.equal(dockerfileDefaultBase('FROM scratch\n'), undefined);
  assert.equal(dockerfileDefaultBase('ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n'), undefined);
  assert.equal(dockerfileDefaultBase('ARG BASE_IMAGE=--privileged\n'), undefined, 'not an image reference');
  assert.match(DEFAULT_STACK_IMAGES.envoy, /^envoyproxy\/envoy:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}$/);
  assert.equal(baseDefault(dockerfile('controlplane')), baseDefault(dockerfile('agent')));
  assert.match(baseDefault(dockerfile('controlplane'))!, /^node:22-/);
  for (const image of ['controlplane', 'coredns']) {
    assert.doesNotMatch(dockerfile(image), /TODO/, image);
    // The only FROMs: the base and stages of this file (nothing else is pulled).
    for (const m of dockerfile(image).matchAll(/^FROM (\S+)/gm)) assert.match(m[1]!, /^(\$\{BASE_IMAGE\}|scratch)$/, `${image}: FROM ${m[1]}`);
  }
});

test('a pull is shown as bytes and layers, at most one line per tenth, with the digest and the error kept', () => {
  const p = new PullProgress('envoyproxy/envoy:v1');
  const lines: string[] = [];
  const push = (e: object): void => void lines.push(...p.push(e));
  push({ status: 'Pulling from envoyproxy/envoy', id: 'v1' });
  push({ status: 'Pulling fs layer', id: 'aaaaaaaaaaaa' });
  push({ status: 'Pulling fs layer', id: 'bbbbbbbbbbbb' });
  for (let i = 1; i <= 100; i++) push({ status: 'Downloading', id: 'aaaaaaaaaaaa', progressDetail: { current: i * 300_000, total: 30_000_000 } });
  push({ status: 'Downloading', id: 'bbbbbbbbbbbb', progressDetail: { current: 10_000_000, total: 10_000_000 } });
  push({ status: 'Download complete', id: 'aaaaaaaaaaaa' });
  push({ status: 'Pull complete', id: 'bbbbbbbbbbbb' });
  push({ status: 'Digest: sha256:' + 'c'.repeat(64) });
  assert.ok(lines.length >= 5 && lines.length <= 13, lines.join('\n'));
  assert.equal(lines.at(-1), 'envoyproxy/envoy:v1: 40.0 of 40.0 MB, 2/2 layers');
  assert.ok(lines.every((l) => l.startsWith('envoyproxy/envoy:v1: ')));
  assert.equal(p.digest, 'sha256:' + 'c'.repeat(64));
  assert.deepEqual(p.push({ error: 'manifest unknown', errorDetail: { message: 'manifest unknown' } }), ['error: manifest unknown']);
  assert.equal(p.error, 'manifest unknown');
});
