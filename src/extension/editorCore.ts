/**
 * The pure core the editor needs, bundled on its own (dist/editorCore.js) and loaded on first use
 * through lazy.ts, so activating the extension does not parse zod, yaml and the policy compiler.
 * Extension code gets the heavy core (anything behind zod, yaml or the policy) through `editorCore()`;
 * scripts/build.mjs fails a build whose extension.js bundles those packages.
 */
export { loadProject } from '../core/config/load';
export { Policy } from '../core/policy/policy';
export { egressEventSchema } from '../core/events/eventSchema';
export { formatEgressEvent } from '../core/events/formatEvent';
export { formatDestination } from '../core/firewall/destination';
export { formatPortRange } from '../core/firewall/port';
export * from '../core/config/projectEdits';
export * from '../core/editor/blockedRequests';
export * from '../core/learn/learnProposal';
export { checkState } from '../core/firewall/runtimeRules';
