/**
 * What the control plane must remember across its own restarts: which agents were disabled, and the
 * bypass windows still open (the kernel closes a window by itself at its deadline; the control plane
 * needs the record to clean up, audit the end, and show it). Written atomically; a damaged file is
 * reported and treated as empty — which can only close egress, never open it: disabled agents come
 * back enforced and bypass windows keep their kernel deadline.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../platform/files';

const stateSchema = z.object({
  version: z.literal(1),
  disabled: z.array(z.string()),
  bypass: z.record(z.string(), z.object({ cgroupId: z.number(), until: z.string() })),
});

export type PersistedState = z.infer<typeof stateSchema>;

export const emptyState = (): PersistedState => ({ version: 1, disabled: [], bypass: {} });

export function readState(file: string, warn: (message: string) => void): PersistedState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return emptyState();
  }
  try {
    return stateSchema.parse(JSON.parse(text));
  } catch (e) {
    warn(`${file} is damaged (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); starting with no disabled agents and no bypass records`);
    return emptyState();
  }
}

export function writeState(file: string, state: PersistedState): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}
