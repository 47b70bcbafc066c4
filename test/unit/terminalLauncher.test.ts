// The `clawker` command in integrated terminals (issue 14, item 9): the launcher script runs the
// bundled CLI on the editor's runtime with the user's arguments intact, whatever the paths hold.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { launcherScript, shellQuote } from '../../src/extension/terminalLauncherScript';

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

test("the launcher execs the runtime on the CLI script with ELECTRON_RUN_AS_NODE and every argument as given", () => {
  const root = mkdtempSync(join(tmpdir(), 'clawker-launcher-'));
  made.push(root);
  // A path a shell would misread if it were not quoted: a space, a quote, a $VAR and a backtick.
  const ext = join(root, "it's $HOME `id` dir");
  mkdirSync(join(ext, 'dist'), { recursive: true });
  const cli = join(ext, 'dist', 'cli.js');
  writeFileSync(cli, 'process.stdout.write(JSON.stringify({ args: process.argv.slice(2), electron: process.env.ELECTRON_RUN_AS_NODE, script: __filename }));');
  const launcher = join(root, 'clawker');
  writeFileSync(launcher, launcherScript(process.execPath, cli));
  chmodSync(launcher, 0o755);
  const out = JSON.parse(execFileSync(launcher, ['firewall', 'add', 'a b', '$(touch pwned)', "'", '--json'], { encoding: 'utf8' })) as { args: string[]; electron: string; script: string };
  assert.deepEqual(out.args, ['firewall', 'add', 'a b', '$(touch pwned)', "'", '--json']);
  assert.equal(out.electron, '1');
  assert.equal(out.script, cli);
});

test('shell quoting keeps every character literal', () => {
  for (const word of ["a'b", '$HOME', '`id`', 'a b', '', "''", '\\n']) {
    assert.equal(execFileSync('sh', ['-c', `printf %s ${shellQuote(word)}`], { encoding: 'utf8' }), word);
  }
});
