/**
 * The egress event stream's model, in one import: the event schema (eventSchema.ts), the
 * converters from each component's output (kernel verdicts, CoreDNS refusals, Envoy's access
 * log) and the one-line format for people. All pure.
 */
export * from './eventSchema';
export { fromKernelEvent, type KernelEventContext } from './kernelEvent';
export { corednsLogDirective, COREDNS_LOG_MARKER, type CorednsLogContext, fromCorednsLog, type NameVerdict } from './corednsLog';
export { type EnvoyAccessLogContext, fromEnvoyAccessLog } from './envoyAccessLog';
export { formatEgressEvent, type FormatOptions } from './formatEvent';
