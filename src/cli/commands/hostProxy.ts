/**
 * `clawker host-proxy status | stop`: the host proxy daemon of this data directory (CLAWKER_DATA_DIR).
 * `run`/`create`/`start` start it; it stops by itself a minute after the stack's last agent stops.
 */
import type { Command } from 'commander';
import { hostProxyUrl, runningHostProxy, stopHostProxy } from '../../platform/hostProxyLauncher';
import { defaultDataDir } from '../../platform/dataDir';

export function registerHostProxyCommands(program: Command): void {
  const hostProxy = program.command('host-proxy').description("The host proxy: git credentials and the browser for agents, on the user's machine.");
  hostProxy
    .command('status')
    .description('Whether the host proxy of this data directory runs, its pid, URL and stack.')
    .option('--json', 'print it as JSON')
    .action(async (o: { json?: boolean }) => {
      const dataDir = defaultDataDir();
      const rec = await runningHostProxy(dataDir);
      const url = rec && hostProxyUrl(rec.listenAddress, rec.port);
      const status = rec ? { running: true, pid: rec.pid, url, stack: rec.stackPrefix, dataDir } : { running: false, dataDir };
      if (o.json) process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      else process.stdout.write(rec ? `host proxy: running (pid ${rec.pid}) on ${url} for stack ${rec.stackPrefix}\n` : `host proxy: not running (data dir ${dataDir})\n`);
    });
  hostProxy
    .command('stop')
    .description('Stop the host proxy of this data directory (agents lose git credentials and the browser until the next start).')
    .action(async () => {
      const dataDir = defaultDataDir();
      process.stdout.write((await stopHostProxy(dataDir)) ? 'host proxy: stopped\n' : `host proxy: none was running (data dir ${dataDir})\n`);
    });
}
