/**
 * The `clawker` command the extension puts on its terminals' PATH (issue 14, item 9): a POSIX shell
 * script that runs the bundled CLI on VS Code's own runtime (Electron as Node on the desktop, Node in
 * code-server), so the CLI works for someone who installed only the `.vsix`. Pure: text only.
 */

/** Quotes one word for sh: the paths are VS Code's, but a quote or a `$` in one must stay literal. */
export const shellQuote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

export function launcherScript(runtime: string, cliScript: string): string {
  return [
    '#!/bin/sh',
    '# Written by the Clawker extension: runs its bundled CLI on the editor\'s runtime. Rewritten on each start.',
    `ELECTRON_RUN_AS_NODE=1 exec ${shellQuote(runtime)} ${shellQuote(cliScript)} "$@"`,
    '',
  ].join('\n');
}
