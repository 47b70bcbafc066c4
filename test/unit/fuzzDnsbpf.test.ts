/**
 * A bounded run of Go's native fuzzer on the dnsbpf plugin's handling of upstream replies
 * (images/coredns/plugin/dnsbpf/dnsbpf_fuzz_test.go): arbitrary wire-format responses through
 * ServeDNS never panic, and never record an address for a query outside the zone, for a reply that
 * is not NOERROR, or one no A record of the answer carries. The seeds already run with every
 * `go test ./...` (test/unit/corefile.test.ts); this adds CLAWKER_FUZZTIME new inputs (Go's -fuzztime:
 * default 5000x, a count, because a time budget on a loaded machine can run out while Go is still
 * replaying the corpus, before a single new input; the first run also builds the instrumented
 * dependencies, which takes minutes).
 * A failing input is saved by Go under plugin/dnsbpf/testdata/fuzz/, and `go test ./...` replays it.
 * Needs Go, as corefile.test.ts does: without it this test fails.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';

const MODULE_DIR = resolve(__dirname, '..', '..', 'images', 'coredns');
const FUZZTIME = process.env.CLAWKER_FUZZTIME ?? '5000x';

test(`go fuzz FuzzServeDNSResponse (-fuzztime=${FUZZTIME}) finds nothing`, async () => {
  const env = { ...process.env, GOFLAGS: [process.env.GOFLAGS, '-mod=readonly', '-buildvcs=false'].filter(Boolean).join(' ') };
  const args = ['test', '-run=^$', '-fuzz=^FuzzServeDNSResponse$', `-fuzztime=${FUZZTIME}`, './plugin/dnsbpf/'];
  const r = await new Promise<{ code: number; output: string }>((done, fail) => {
    execFile('go', args, { cwd: MODULE_DIR, env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        fail((err as NodeJS.ErrnoException).code === 'ENOENT' ? new Error('Go is not installed (no `go` on PATH): images/coredns is a Go module.') : err);
        return;
      }
      done({ code: err ? (err.code as number) : 0, output: `${stdout}${stderr}` });
    });
  });
  assert.equal(r.code, 0, `go ${args.join(' ')} failed:\n${r.output}`);
  // It really fuzzed: Go prints its progress lines, then PASS.
  assert.match(r.output, /^fuzz: elapsed: .*execs: [1-9]/m, r.output);
  assert.match(r.output, /^ok\s+clawker\.dev\/coredns\/plugin\/dnsbpf\s/m, r.output);
});
