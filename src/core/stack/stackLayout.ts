/**
 * Where the control plane keeps things, under its data directory. In its container that directory
 * is CONTROL_PLANE_DATA_DIR, a named volume (with the two rendered configurations as volumes of their
 * own inside it); in unit tests, a temporary directory. The host's data dir has the same layout for
 * the parts it owns (the rule store and the CA), which is what `firewall up` copies in.
 */
import { posix } from 'node:path';

/** The control plane's data directory inside its container. */
export const CONTROL_PLANE_DATA_DIR = '/var/lib/clawker';

export interface StackLayout {
  readonly dataDir: string;
  /** Rendered configuration: envoy/, coredns/, bpf/. */
  readonly stackDir: string;
  readonly envoyDir: string;
  readonly corednsDir: string;
  readonly caDir: string;
  readonly stateFile: string;
  readonly eventsFile: string;
}

/** POSIX paths: the layout is the Linux container's, whichever OS the host runs. */
export function stackLayout(dataDir: string): StackLayout {
  const stackDir = posix.join(dataDir, 'firewall', 'stack');
  return {
    dataDir,
    stackDir,
    envoyDir: posix.join(stackDir, 'envoy'),
    corednsDir: posix.join(stackDir, 'coredns'),
    caDir: posix.join(dataDir, 'firewall', 'ca'),
    stateFile: posix.join(dataDir, 'controlplane', 'state.json'),
    eventsFile: posix.join(dataDir, 'events', 'egress.jsonl'),
  };
}
