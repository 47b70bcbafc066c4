/**
 * A fake git for the host proxy's credential runner (test/unit/hostProxy, securityHostProxyServer):
 * a shell script that records its argv, stdin and environment next to itself, then answers as
 * `mode` says ('deaf': exits 3 at once, without reading its input or recording anything).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type FakeGitMode = 'answer' | 'prompt' | 'fail' | 'hang' | 'killed' | 'deaf';

/** Writes `<dir>/git`; its records are `<record>.argv`, `.stdin` and `.env`. */
export function fakeGit(dir: string, mode: FakeGitMode): { git: string; record: string } {
  const record = join(dir, 'record');
  const git = join(dir, 'git');
  if (mode === 'deaf') {
    writeFileSync(git, '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    return { git, record };
  }
  const answer = {
    answer: `printf 'protocol=https\\nhost=git.test\\nusername=alice\\npassword=pa=ss word\\n'`,
    prompt: `echo "fatal: could not read Username for 'https://git.test': terminal prompts disabled" >&2; exit 128`,
    fail: 'exit 3',
    hang: 'sleep 10',
    // Killed by a signal that is not the runner's timeout: no exit code.
    killed: 'kill -KILL $$',
  }[mode];
  writeFileSync(git, `#!/bin/sh\nprintf '%s\\n' "$@" > '${record}.argv'\ncat > '${record}.stdin'\nenv > '${record}.env'\n${answer}\n`, { mode: 0o755 });
  return { git, record };
}
