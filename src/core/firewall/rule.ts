import type { Destination } from './destination';
import { formatDestination } from './destination';
import type { PathMatch } from './pathMatch';
import type { PortRange } from './port';
import { formatPortRange } from './port';

export type Action = 'allow' | 'deny';

/** Where a rule came from; system rules are built in and can never be removed or overridden. */
export type RuleOrigin = 'system' | 'project' | 'runtime';

export interface NormalizedPathRule {
  /** The path exactly as written (`/v1`, `~/repos/x/?`): its length orders the rules. */
  readonly path: string;
  readonly match: PathMatch;
  readonly action: Action;
  /** Upper-case methods; empty means every method. */
  readonly methods: readonly string[];
}

/** A rule after defaults and normalisation: the input of the policy compiler. */
export interface NormalizedRule {
  readonly dst: Destination;
  readonly proto: string;
  readonly port: PortRange;
  readonly action: Action;
  readonly pathRules: readonly NormalizedPathRule[];
  readonly pathDefault: Action;
  readonly origin: RuleOrigin;
}

/** The dedup key `destination:protocol:port`: a later rule with the same key is ignored. */
export const ruleKey = (rule: Pick<NormalizedRule, 'dst' | 'proto' | 'port'>): string =>
  `${formatDestination(rule.dst)}:${rule.proto}:${formatPortRange(rule.port)}`;
