/**
 * The stack's named volumes (see StackVolumes): created with our labels when missing. The state
 * volume is tied to the host data dir whose rules and CA it holds a copy of; a stack started from
 * another data dir (a second install, a test) starts from an empty state rather than another's.
 */
import type Docker from 'dockerode';
import { LABEL_DATA_DIR, LABEL_STACK, managedLabels } from '../../core/stack/labels';
import type { StackNames } from '../../core/stack/stackNames';
import { isNotFound } from './containers';

async function inspectVolume(docker: Docker, name: string): Promise<{ Labels?: Record<string, string> | null } | undefined> {
  try {
    return (await docker.getVolume(name).inspect()) as { Labels?: Record<string, string> | null };
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

export async function ensureStackVolumes(docker: Docker, names: StackNames, dataDirId: string, progress: (message: string) => void): Promise<void> {
  const wanted = [
    { name: names.volumes.state, labels: managedLabels('controlplane', { [LABEL_STACK]: names.prefix, [LABEL_DATA_DIR]: dataDirId }) },
    { name: names.volumes.envoyConfig, labels: managedLabels('envoy', { [LABEL_STACK]: names.prefix }) },
    { name: names.volumes.corednsConfig, labels: managedLabels('coredns', { [LABEL_STACK]: names.prefix }) },
  ];
  for (const { name, labels } of wanted) {
    const existing = await inspectVolume(docker, name);
    const owner = existing?.Labels?.[LABEL_DATA_DIR];
    if (existing && labels[LABEL_DATA_DIR] !== undefined && owner !== labels[LABEL_DATA_DIR]) {
      progress(`volume ${name} holds the state of a stack started from another data dir: starting from an empty state`);
      await docker.getVolume(name).remove();
    } else if (existing) continue;
    await docker.createVolume({ Name: name, Labels: labels });
  }
}
