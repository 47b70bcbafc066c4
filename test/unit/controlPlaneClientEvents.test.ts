/**
 * The event stream's client side against a real HTTP server on a Unix socket: it says it is open
 * before any event arrives (an idle stack is still a connected one), delivers each JSON line, and
 * a stopped server or a missing socket read as "not running".
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ControlPlaneClient, ControlPlaneNotRunning } from '../../src/platform/controlPlaneClient';
import { UnixSocketTransport } from '../../src/platform/controlPlaneTransport';

test('events: open before the first event, then each line, until the abort', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'clawker-cp-client-'));
  mkdirSync(join(dataDir, 'run'));
  let stream: ServerResponse | undefined;
  const server = createServer((req, res) => {
    assert.equal(req.url, '/v1/events?tail=5&follow=1');
    req.on('error', () => undefined); // the client's abort, seen from this side
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.flushHeaders();
    stream = res;
  });
  const socket = join(dataDir, 'run', 'api.sock');
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  const abort = new AbortController();
  const seen: unknown[] = [];
  let opened = false;
  const done = new ControlPlaneClient(new UnixSocketTransport(socket)).events({ tail: 5, follow: true, signal: abort.signal, onOpen: () => (opened = true) }, (e) => seen.push(e));
  for (let i = 0; i < 200 && !opened; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(opened, true, 'open with no event sent');
  assert.deepEqual(seen, []);
  stream!.write('{"verdict":"denied","source":"dns"}\n{"verdict":"allowed",');
  stream!.write('"source":"kernel"}\n');
  for (let i = 0; i < 200 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(seen, [
    { verdict: 'denied', source: 'dns' },
    { verdict: 'allowed', source: 'kernel' },
  ]);
  abort.abort();
  await done;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await assert.rejects(new ControlPlaneClient(new UnixSocketTransport(socket)).events({ tail: 1, follow: false }, () => undefined), ControlPlaneNotRunning);
});
