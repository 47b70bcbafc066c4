/**
 * The extension's CLI runner against a stand-in `dist/cli.js`: argv passed as is (no shell),
 * progress lines streamed, JSON parsed, failures carrying the CLI's last stderr line, and
 * cancellation really stopping the process.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type * as vscode from 'vscode';
import { BundledCli, CliError, cliVerdict } from '../../src/extension/stack/cliRunner';

const extensionDir = mkdtempSync(join(tmpdir(), 'clawker-cli-runner-'));
mkdirSync(join(extensionDir, 'dist'));
writeFileSync(
  join(extensionDir, 'dist', 'cli.js'),
  `const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'echo') { process.stderr.write('==> step 1\\n==> step 2\\n'); console.log(JSON.stringify({ args: rest, env: process.env.CLAWKER_DATA_DIR, cwd: process.cwd() })); }
else if (cmd === 'fail') { process.stderr.write('clawker: firewall: the control plane is not running\\n  next: clawker firewall up\\n'); process.exit(2); }
else if (cmd === 'sleep') { process.stderr.write('started ' + process.pid + '\\n'); setInterval(() => {}, 1000); }
`,
);

const lines: string[] = [];
const log = { info: (m: string) => lines.push(m), debug: () => {}, warn: (m: string) => lines.push(m) } as unknown as vscode.LogOutputChannel;
const cli = new BundledCli(extensionDir, () => ({ CLAWKER_DATA_DIR: '/data/dir' }), log);

/** A cancellation token the test fires by hand. */
function token(): { token: vscode.CancellationToken; cancel: () => void } {
  let listener: (() => void) | undefined;
  let cancelled = false;
  return {
    token: {
      get isCancellationRequested() {
        return cancelled;
      },
      onCancellationRequested: ((fn: () => void) => {
        listener = fn;
        return { dispose: () => (listener = undefined) };
      }) as unknown as vscode.Event<unknown>,
    },
    cancel: () => {
      cancelled = true;
      listener?.();
    },
  };
}

describe('the extension runs the bundled CLI', () => {
  test('arguments arrive as given (no shell), with the settings environment and working directory', async () => {
    const progress: string[] = [];
    const hostile = '$(touch /tmp/pwned); `id` && echo; "quoted"';
    const out = await cli.json<{ args: string[]; env: string; cwd: string }>(['echo', hostile, '--flag'], { cwd: tmpdir(), onProgress: (l) => progress.push(l) });
    assert.deepEqual(out, { args: [hostile, '--flag'], env: '/data/dir', cwd: tmpdir() });
    assert.deepEqual(progress, ['==> step 1', '==> step 2']);
  });

  test('a failure carries the exit code and the last thing the CLI said', async () => {
    await assert.rejects(cli.json(['fail']), (e: unknown) => {
      assert.ok(e instanceof CliError);
      assert.equal(e.result.code, 2);
      assert.match(e.message, /exited 2: next: clawker firewall up$/);
      return true;
    });
  });

  test('cancelling stops the CLI process', async () => {
    const t = token();
    let pid = 0;
    const running = cli.run(['sleep'], {
      token: t.token,
      onProgress: (l) => {
        pid = Number(/started (\d+)/.exec(l)?.[1] ?? 0);
        t.cancel();
      },
    });
    const result = await running;
    assert.ok(pid > 0, 'the stand-in CLI started');
    assert.notEqual(result.code, 0);
    assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the CLI process is gone after cancellation');
  });

  test('a token already cancelled starts nothing', async () => {
    const t = token();
    t.cancel();
    const result = await cli.run(['sleep'], { token: t.token });
    assert.equal(result.code, 130);
  });
});

describe("the CLI's verdict from its stderr", () => {
  test('the error and its next step, without the program name', () => {
    assert.equal(
      cliVerdict('==> step\nclawker: docker: connect ENOENT /x.sock\n  next: start the Docker engine\n'),
      'docker: connect ENOENT /x.sock — next: start the Docker engine',
    );
  });
  test('a last line without next: is the verdict; nothing said is undefined', () => {
    assert.equal(cliVerdict('clawker: firewall: refused\n'), 'firewall: refused');
    assert.equal(cliVerdict('\n  \n'), undefined);
  });
});
