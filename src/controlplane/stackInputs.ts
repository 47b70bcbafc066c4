/**
 * The control plane's copy of what the host owns (the rule store and the CA): checked, then written
 * into its data directory atomically, each file only when its content changed. The host checked
 * them already; checking again here means a damaged or foreign input is refused before it replaces
 * the last good copy the running firewall was rendered from.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { checkState } from '../core/firewall/runtimeRules';
import { readCertificateAuthority } from '../core/pki/authority';
import { readP256PrivateKey } from '../core/pki/keys';
import type { StackInputs } from '../core/stack/controlPlaneApi';
import { stackLayout } from '../core/stack/stackLayout';
import { writeFileAtomic } from '../platform/files';
import { caFiles } from '../platform/caStore';
import { RuleStore } from '../platform/ruleStore';

export class StackInputsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StackInputsError';
  }
}

const MAX_TEXT = 8 * 1024 * 1024;
const text = (value: unknown, what: string): string => {
  if (typeof value !== 'string' || value.length > MAX_TEXT) throw new StackInputsError(`${what}: expected the file's text`);
  return value;
};

/** The request body as StackInputs, or why not. */
export function parseStackInputs(body: unknown): StackInputs {
  const b = body as { rules?: unknown; ca?: { certificate?: unknown; key?: unknown; leafKey?: unknown } } | null;
  if (typeof b !== 'object' || b === null || typeof b.ca !== 'object' || b.ca === null) throw new StackInputsError('expected {"rules": "...", "ca": {"certificate", "key", "leafKey"}}');
  return { rules: text(b.rules, 'rules'), ca: { certificate: text(b.ca.certificate, 'ca.certificate'), key: text(b.ca.key, 'ca.key'), leafKey: text(b.ca.leafKey, 'ca.leafKey') } };
}

/** Refuses inputs the firewall could not be rendered from; names what is wrong, never file contents. */
export function checkStackInputs(inputs: StackInputs): void {
  let state: unknown;
  try {
    state = JSON.parse(inputs.rules);
  } catch {
    throw new StackInputsError('the rule store sent is not valid JSON');
  }
  const checked = checkState(state);
  if (checked.failed) throw new StackInputsError(`the rule store sent holds rules that cannot be applied: ${checked.problems.filter((p) => p.severity === 'error').map((p) => p.message).join('; ')}`);
  const ca = readCertificateAuthority(inputs.ca.certificate, inputs.ca.key);
  if ('problem' in ca) throw new StackInputsError(`the CA sent cannot be used (${ca.problem.kind}); clawker firewall rotate-ca makes a new one`);
  const leaf = readP256PrivateKey(inputs.ca.leafKey);
  if ('problem' in leaf) throw new StackInputsError(`the leaf key sent cannot be used (${leaf.problem}); clawker firewall rotate-ca makes a new one`);
}

/** Writes the inputs where renderStack reads them (`<data dir>/firewall/...`); returns the files that changed. */
export function adoptStackInputs(dataDir: string, inputs: StackInputs): string[] {
  checkStackInputs(inputs);
  const store = new RuleStore(dataDir);
  const ca = caFiles(stackLayout(dataDir).caDir);
  mkdirSync(ca.directory, { recursive: true, mode: 0o700 });
  const files: [string, string, number][] = [
    // Key files before the certificate: a reader in between sees a mismatch and reads again (caStore).
    [ca.leafKey, inputs.ca.leafKey, 0o600],
    [ca.key, inputs.ca.key, 0o600],
    [ca.certificate, inputs.ca.certificate, 0o644],
    [store.file, inputs.rules, 0o600],
  ];
  const changed: string[] = [];
  for (const [path, content, mode] of files) {
    if (existsSync(path) && readFileSync(path, 'utf8') === content) continue;
    writeFileAtomic(path, content, { mode });
    changed.push(path);
  }
  return changed;
}
