/**
 * The host's side of the stack's inputs: the rule store and the CA live in the user's data dir (the
 * source of truth, owned by the user), and the control plane gets a copy through Docker itself —
 * put into its volume before it starts, carried in the body of every reload after. No host path is
 * ever mounted into the stack, so this works on an engine in a VM or on another machine.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ArchiveEntry } from '../core/agents/lifecycle';
import type { ReloadResult, StackInputs } from '../core/stack/controlPlaneApi';
import { stackLayout } from '../core/stack/stackLayout';
import { caFiles, loadOrCreateCa } from './caStore';
import type { ControlPlaneClient } from './controlPlaneClient';
import { RuleStore } from './ruleStore';

/** Which host data dir a stack's state came from: a hash of its path (the path itself stays on the host). */
export const dataDirId = (dataDir: string): string => createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16);

/**
 * The rule store (checked: a damaged one throws naming the host file and its recovery) and the CA
 * (created on first use, with the data dir, 0700): their files' text, exactly.
 */
export async function readStackInputs(dataDir: string): Promise<StackInputs> {
  const { text } = new RuleStore(dataDir).snapshot();
  const files = caFiles(stackLayout(dataDir).caDir);
  const read = (): Promise<[string, string, string]> => Promise.all([readFile(files.certificate, 'utf8'), readFile(files.key, 'utf8'), readFile(files.leafKey, 'utf8')]);
  let pems: [string, string, string];
  try {
    pems = await read();
  } catch {
    // Missing or unreadable: loadOrCreateCa creates it the first time, or says what is wrong.
    await loadOrCreateCa(files.directory);
    pems = await read();
  }
  return { rules: text, ca: { certificate: pems[0], key: pems[1], leafKey: pems[2] } };
}

/** The inputs as files of the control plane's data dir (relative paths: put at its root), owned by its root. */
export function stackInputEntries(inputs: StackInputs): ArchiveEntry[] {
  const at = stackLayout('.');
  const dir = (path: string): ArchiveEntry => ({ path, type: 'directory', mode: 0o700, uid: 0, gid: 0 });
  const file = (path: string, content: string, mode: number): ArchiveEntry => ({ path, type: 'file', mode, uid: 0, gid: 0, content });
  const ca = caFiles(at.caDir);
  return [
    dir('firewall'),
    dir(at.caDir),
    file(ca.leafKey, inputs.ca.leafKey, 0o600),
    file(ca.key, inputs.ca.key, 0o600),
    file(ca.certificate, inputs.ca.certificate, 0o644),
    file(new RuleStore('.').file, inputs.rules, 0o600),
  ];
}

/** A reload that first hands the control plane the host's current rule store and CA. */
export async function reloadFromHost(client: ControlPlaneClient, dataDir: string): Promise<ReloadResult> {
  return client.reload(await readStackInputs(dataDir));
}
