/**
 * Labels on everything Clawker creates in Docker. They are how we recognise our resources, and the
 * only ones we ever touch: nothing without `dev.clawker.managed=true` is modified or removed.
 */
export const LABEL_MANAGED = 'dev.clawker.managed';
export const LABEL_COMPONENT = 'dev.clawker.component';
export const LABEL_PROJECT = 'dev.clawker.project';
export const LABEL_AGENT = 'dev.clawker.agent';
/** Which stack (see stackNames.ts) an object belongs to. */
export const LABEL_STACK = 'dev.clawker.stack';
/** On the control plane and its state volume: which host data dir (a hash of its path) the stack's state came from. */
export const LABEL_DATA_DIR = 'dev.clawker.data-dir';

export type Component = 'network' | 'envoy' | 'coredns' | 'controlplane' | 'agent' | 'cgroup-primer';

export const managedLabels = (component: Component, extra: Record<string, string> = {}): Record<string, string> => ({
  [LABEL_MANAGED]: 'true',
  [LABEL_COMPONENT]: component,
  ...extra,
});

export const isManaged = (labels: Record<string, string> | null | undefined): boolean => labels?.[LABEL_MANAGED] === 'true';
