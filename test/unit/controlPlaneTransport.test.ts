// The host's way to the control plane's API (issue 14, item 3): HTTP carried by a docker exec
// session. Here the exec is a fake that frames what a real relay would write, in Docker's stream
// format; the e2e suites run the real one (bpfman relay in the control-plane container).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { ControlPlaneClient, ControlPlaneNotRunning } from '../../src/platform/controlPlaneClient';
import { ExecRelayTransport, RELAY_COMMAND } from '../../src/platform/controlPlaneTransport';

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

const frame = (type: 1 | 2, payload: string | Buffer): Buffer => {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
};

/**
 * A fake engine whose exec joins the session to a real HTTP server on a Unix socket, framing the
 * server's bytes as Docker does (stdout frames, cut at awkward places), like `bpfman relay`.
 */
function engineRelayingTo(socket: string | undefined, o: { exitCode?: number; stderr?: string; createStatus?: number } = {}) {
  const execs: { Cmd: string[]; container: string }[] = [];
  const docker = {
    getContainer: (container: string) => ({
      exec: async (opts: { Cmd: string[] }) => {
        if (o.createStatus) throw Object.assign(new Error(`HTTP ${o.createStatus}`), { statusCode: o.createStatus });
        execs.push({ Cmd: opts.Cmd, container });
        return {
          start: async () => {
            // What the client writes goes to the API; what the API answers comes back framed.
            const toClient = new PassThrough();
            const fromClient = new PassThrough();
            const session = Duplex.from({ readable: toClient, writable: fromClient });
            if (!socket) {
              if (o.stderr) toClient.write(frame(2, o.stderr));
              toClient.end();
              return session;
            }
            const api = connect(socket);
            fromClient.pipe(api);
            api.on('data', (chunk: Buffer) => {
              // Split each chunk in two frames, and each frame's bytes across two writes.
              const half = Math.ceil(chunk.length / 2);
              for (const part of [chunk.subarray(0, half), chunk.subarray(half)]) {
                if (!part.length) continue;
                const f = frame(1, part);
                toClient.write(f.subarray(0, 5));
                toClient.write(f.subarray(5));
              }
            });
            api.on('end', () => toClient.end());
            fromClient.on('end', () => api.end());
            return session;
          },
          inspect: async () => ({ ExitCode: o.exitCode ?? 0 }),
        };
      },
    }),
  } as unknown as Pick<Docker, 'getContainer'>;
  return { docker, execs };
}

async function apiServer(handler: Parameters<typeof createServer>[1]): Promise<{ socket: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-transport-'));
  made.push(dir);
  const socket = join(dir, 'api.sock');
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { socket, close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) };
}

describe('the API through a docker exec session', () => {
  test('requests and answers cross the relay, in the stack container, through bpfman relay on the in-container socket', async () => {
    const seen: string[] = [];
    const api = await apiServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push(`${req.method} ${req.url} ${body}`);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ agent: 'dev', state: 'bypassed', message: 'x'.repeat(70_000) }));
      });
    });
    const { docker, execs } = engineRelayingTo(api.socket);
    const client = new ControlPlaneClient(new ExecRelayTransport(docker, 'clawker-controlplane', '/run/clawker/controlplane.sock'), 5000);
    try {
      const first = (await client.bypass('clawker.web.dev', 60)) as unknown as { agent: string; message: string };
      assert.equal(first.agent, 'dev');
      assert.equal(first.message.length, 70_000, 'a large answer arrives whole across many frames');
      await client.bypass('clawker.web.dev', 0);
      assert.deepEqual(seen, ['POST /v1/agents/clawker.web.dev/bypass {"seconds":60}', 'DELETE /v1/agents/clawker.web.dev/bypass ']);
      assert.deepEqual(execs, [{ container: 'clawker-controlplane', Cmd: [...RELAY_COMMAND, '/run/clawker/controlplane.sock'] }], 'one session, kept alive for the second request');
    } finally {
      client.close();
      await api.close();
    }
  });

  test("a kept-alive session serves many requests without gathering timeout listeners; a silent API times out at the client's timeout", async () => {
    const api = await apiServer((req, res) => {
      if (req.url === '/v1/status') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"phase":"ready"}');
      } // anything else: never answered
    });
    const { docker, execs } = engineRelayingTo(api.socket);
    const client = new ControlPlaneClient(new ExecRelayTransport(docker, 'cp', '/s'), 300);
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      for (let i = 0; i < 25; i++) assert.equal(((await client.status()) as unknown as { phase: string }).phase, 'ready');
      assert.equal(execs.length, 1, 'one session for all of them');
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings.filter((m) => /timeout listeners/.test(m)), []);
      const started = Date.now();
      await assert.rejects(client.down(), /did not answer POST \/v1\/down within 0\.3 s/);
      assert.ok(Date.now() - started < 5_000, 'it gave up at its timeout');
    } finally {
      process.off('warning', onWarning);
      client.close();
      await api.close();
    }
  });

  test('the event stream: each line as it comes', async () => {
    const api = await apiServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('{"verdict":"denied"}\n{"verd');
      setTimeout(() => res.end('ict":"allowed"}\n'), 20);
    });
    const { docker } = engineRelayingTo(api.socket);
    const client = new ControlPlaneClient(new ExecRelayTransport(docker, 'cp', '/s'));
    const events: unknown[] = [];
    let opened = false;
    await client.events({ tail: 2, follow: false, onOpen: () => (opened = true) }, (e) => events.push(e));
    assert.equal(opened, true);
    assert.deepEqual(events, [{ verdict: 'denied' }, { verdict: 'allowed' }]);
    client.close();
    await api.close();
  });

  test('"not running": no container, a stopped one, or nothing listening inside (the relay exits 3)', async () => {
    for (const [setup, reason] of [
      [{ createStatus: 404 }, 'no such container'],
      [{ createStatus: 409 }, 'not running'],
      [{ exitCode: 3, stderr: 'relay: nothing listens on /s' }, 'its API is not listening'],
    ] as const) {
      const { docker } = engineRelayingTo(undefined, setup);
      const client = new ControlPlaneClient(new ExecRelayTransport(docker, 'clawker-controlplane', '/s'), 2000);
      await assert.rejects(client.status(), (e: unknown) => {
        assert.ok(e instanceof ControlPlaneNotRunning, String(e));
        assert.equal(e.message, `the firewall control plane is not running (no answer from the control plane (container clawker-controlplane): ${reason}); start it with: clawker firewall up`);
        return true;
      });
      await assert.rejects(client.events({ tail: 1, follow: false }, () => undefined), ControlPlaneNotRunning);
      client.close();
    }
  });

  test("another failure of the relay is reported with what it said, not as 'not running'", async () => {
    const { docker } = engineRelayingTo(undefined, { exitCode: 1, stderr: 'relay: permission denied' });
    const client = new ControlPlaneClient(new ExecRelayTransport(docker, 'cp', '/s'), 2000);
    await assert.rejects(client.status(), (e: unknown) => !(e instanceof ControlPlaneNotRunning) && /relay: permission denied/.test(String(e)));
    client.close();
  });

  test('an engine error other than 404/409 is passed on', async () => {
    const { docker } = engineRelayingTo(undefined, { createStatus: 500 });
    const client = new ControlPlaneClient(new ExecRelayTransport(docker, 'cp', '/s'), 2000);
    await assert.rejects(client.status(), (e: unknown) => !(e instanceof ControlPlaneNotRunning) && /HTTP 500/.test(String(e)));
    client.close();
  });
});
