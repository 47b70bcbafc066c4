/** Names the daemon and its launcher (src/platform/hostProxyLauncher.ts) share. Pure. */

/** Under the data directory. */
export const HOST_PROXY_SUBDIR = 'hostproxy';
export const HOST_PROXY_SECRET_FILE = 'secret';
export const HOST_PROXY_PID_FILE = 'hostproxy.pid';
export const HOST_PROXY_LOG_FILE = 'hostproxy.log';
/** What the health endpoint answers with, so a launcher recognises our daemon (and not whatever else holds the port). */
export const HOST_PROXY_SERVICE = 'clawker-hostproxy';
/** The log is rotated (to hostproxy.log.1) past this size: by the launcher before a start and by the daemon while it runs. */
export const HOST_PROXY_LOG_MAX_BYTES = 1024 * 1024;
/** The secret's size. */
export const HOST_PROXY_SECRET_BYTES = 32;

/** What the daemon writes to its pid file once it listens. */
export interface HostProxyPidFile {
  readonly pid: number;
  readonly listenAddress: string;
  readonly port: number;
  readonly stackPrefix: string;
}
