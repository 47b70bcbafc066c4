/**
 * The stack's images built from this checkout by scripts/build-images.sh (which runs `clawker
 * firewall build`: the engine's classic builder, a context sent through the API), on the test bed's base
 * image: CoreDNS serves with no capability and a read-only root, and has nothing to execute but
 * itself; the control-plane image has Node >= 18, the bundle and a working bpfman.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureStackImages, runBuildImages, type StackImageTags } from './stackImages';
import { E2E_PID_LABEL, removeContainer, run, runOk, uniqueName } from './testbed';

const COREFILE = `.:53 {
    health :18902
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`;

let images: StackImageTags;
const configDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-images-'));
const started: string[] = [];

before(async () => {
  images = await ensureStackImages();
});
after(async () => {
  for (const id of started) await removeContainer(id).catch(() => undefined);
  rmSync(configDir, { recursive: true, force: true });
});

async function containerIp(id: string): Promise<string> {
  const ip = (await runOk('docker', ['inspect', '-f', '{{.NetworkSettings.IPAddress}}', id])).trim();
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/, `container ${id} has no IPv4 address`);
  return ip;
}

/** GET url until it answers 200 or the deadline passes; returns the body. */
async function getWhenUp(url: string, timeoutMs: number, whatToShowOnFailure: () => Promise<string>): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      const body = await res.text();
      if (res.status === 200) return body;
      last = `HTTP ${res.status} ${body}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})\n${await whatToShowOnFailure()}`);
}

/** One DNS query over UDP; resolves with the response's RCODE. */
function dnsRcode(server: string, name: string, timeoutMs = 3_000): Promise<number> {
  const labels = name.split('.').filter(Boolean);
  const question = Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])),
    Buffer.from([0, 0, 1, 0, 1]), // root, QTYPE A, QCLASS IN
  ]);
  const id = Math.floor(Math.random() * 0xffff);
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no DNS answer from ${server}:53 within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('message', (msg) => {
      if (msg.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      socket.close();
      resolve(msg[3]! & 0x0f);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    });
    socket.send(Buffer.concat([header, question]), 53, server);
  });
}

test('CoreDNS runs with every capability dropped and a read-only root: /health on 18902, NXDOMAIN from the template', async () => {
  writeFileSync(join(configDir, 'Corefile'), COREFILE);
  const name = uniqueName('coredns');
  const id = (
    await runOk('docker', [
      'run', '-d', '--name', name, '--label', `${E2E_PID_LABEL}=${process.pid}`,
      '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true', '--read-only',
      '-v', `${configDir}:/etc/coredns:ro`,
      images.coredns,
    ])
  ).trim();
  started.push(id);
  const ip = await containerIp(id);
  const logs = async (): Promise<string> => {
    const r = await run('docker', ['logs', id]);
    return `docker logs:\n${r.stdout}${r.stderr}`;
  };
  const body = await getWhenUp(`http://${ip}:18902/health`, 15_000, logs);
  assert.equal(body.trim(), 'OK');
  assert.equal(await dnsRcode(ip, 'example.com'), 3, 'the template answers NXDOMAIN for every name');
});

test('the CoreDNS image holds the dnsbpf plugin and nothing to execute but CoreDNS', async () => {
  const plugins = await runOk('docker', ['run', '--rm', '--cap-drop', 'ALL', images.coredns, '-plugins']);
  assert.match(plugins, /^\s*dnsbpf$/m);
  for (const program of ['/bin/sh', '/bin/bash', '/usr/bin/env', '/bin/busybox', '/usr/bin/apt-get', '/usr/bin/perl']) {
    const r = await run('docker', ['run', '--rm', '--entrypoint', program, images.coredns, '-c', 'true']);
    assert.notEqual(r.code, 0, `${program} ran in the CoreDNS image`);
    assert.match(r.stderr, /no such file or directory|not found/i, `${program}: ${r.stderr}`);
  }
});

test('the control-plane image: Node >= 18, the bundle as entry point, bpfman, root inside', async () => {
  const version = (await runOk('docker', ['run', '--rm', '--entrypoint', 'node', images.controlplane, '--version'])).trim();
  const major = Number(/^v(\d+)\./.exec(version)?.[1]);
  assert.ok(major >= 18, `node --version in the image: ${version}`);

  // The bundle parses in the image's Node (it targets node18 for Debian's nodejs).
  await runOk('docker', ['run', '--rm', '--entrypoint', 'node', images.controlplane, '--check', '/opt/clawker/controlplane.js']);

  // Go's flag convention: usage on stderr, exit 2.
  const help = await run('docker', ['run', '--rm', '--entrypoint', '/opt/clawker/bpfman', images.controlplane, '--help']);
  assert.match(help.stdout + help.stderr, /usage: bpfman COMMAND/);
  assert.match(help.stdout + help.stderr, /\broutes\b.*--file/);

  const config = JSON.parse(await runOk('docker', ['image', 'inspect', '--format', '{{json .Config}}', images.controlplane])) as {
    Entrypoint: string[];
    Env: string[];
    User: string;
  };
  assert.deepEqual(config.Entrypoint, ['node', '/opt/clawker/controlplane.js']);
  assert.ok(config.Env.includes('CLAWKER_BPFMAN=/opt/clawker/bpfman'), config.Env.join('\n'));
  assert.ok(config.User === '' || config.User === 'root' || config.User === '0', `User: ${config.User}`);

  const files = await runOk('docker', ['run', '--rm', '--entrypoint', 'node', images.controlplane, '-e',
    'const fs = require("fs"); for (const f of ["/opt/clawker/controlplane.js", "/opt/clawker/bpfman"]) { const s = fs.statSync(f); console.log(f, s.size, (s.mode & 0o111) !== 0); }']);
  assert.match(files, /^\/opt\/clawker\/controlplane\.js [1-9]\d* /m);
  assert.match(files, /^\/opt\/clawker\/bpfman [1-9]\d* true$/m);
  // No package lists left behind by the Node install.
  const lists = await run('docker', ['run', '--rm', '--entrypoint', 'node', images.controlplane, '-e',
    'const fs = require("fs"); const d = "/var/lib/apt/lists"; console.log(fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f !== "partial" && f !== "lock").length : 0)']);
  assert.equal(lists.stdout.trim(), '0', 'apt package lists in the image');
});

test('a second run with unchanged inputs rebuilds nothing', async () => {
  const idsBefore = await runOk('docker', ['image', 'inspect', '--format', '{{.Id}}', images.coredns, images.controlplane]);
  const second = await runBuildImages();
  assert.equal(second.code, 0, second.output);
  assert.ok(second.output.includes(`${images.coredns}: up to date`), second.output);
  assert.ok(second.output.includes(`${images.controlplane}: up to date`), second.output);
  assert.doesNotMatch(second.output, /Building |Step \d+\/\d+/);
  // The suites build their own tags: the user's images (`npm run images`, :latest) are not touched.
  assert.doesNotMatch(second.output, /clawker-(coredns|controlplane):latest/);
  assert.equal(await runOk('docker', ['image', 'inspect', '--format', '{{.Id}}', images.coredns, images.controlplane]), idsBefore);
});
