/**
 * Entry point of the host proxy daemon (bundled to dist/hostproxy.js, target node20). It runs on the
 * user's machine, started detached by src/platform/hostProxyLauncher.ts, which points its stdout and
 * stderr at <dataDir>/hostproxy/hostproxy.log.
 *
 *   node hostproxy.js --data-dir DIR --listen GATEWAY_IP [--port 18374] [--stack-prefix clawker]
 *                     [--docker-host ADDRESS] [--idle-grace-ms 60000] [--idle-poll-ms 30000]
 *
 * Each option may instead come from the environment (see daemonConfig.ts).
 * CLAWKER_HOSTPROXY_OPENER names a program that opens URLs instead of the browser (see browser.ts).
 *
 * It reads the secret (<dataDir>/hostproxy/secret, created by the launcher; refused if others can
 * read it), listens, then writes <dataDir>/hostproxy/hostproxy.pid. SIGTERM/SIGINT: stops listening,
 * removes the pid file (if still ours) and exits 0; so does a minute with no agent running
 * (idleExit.ts). The logic is in daemon.ts.
 */
import { daemonArguments, nodeHostProxyDeps, runHostProxy } from './daemon';

void runHostProxy(daemonArguments(process.argv), process.env, nodeHostProxyDeps());
