/**
 * Navigation over the JSON Schemas generated from the zod schemas. Hovers, completions and the
 * unknown/unsupported-key checks read the schema this way, so every view shares one source of truth.
 */

export interface JsonSchema {
  readonly type?: string | readonly string[];
  readonly description?: string;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly additionalProperties?: boolean | JsonSchema;
  readonly items?: JsonSchema;
  readonly enum?: readonly unknown[];
  readonly examples?: readonly unknown[];
  readonly default?: unknown;
  readonly anyOf?: readonly JsonSchema[];
  readonly oneOf?: readonly JsonSchema[];
  readonly required?: readonly string[];
  /** Set on keys clawker accepts that this extension does not implement yet. */
  readonly 'x-clawker-unsupported'?: boolean;
  /** Set on keys older clawker versions read and current ones ignore: why it has no effect. */
  readonly 'x-clawker-ignored'?: string;
  /** Set on keys still read but renamed: what to write instead. */
  readonly 'x-clawker-renamed'?: string;
  readonly [key: string]: unknown;
}

export const UNSUPPORTED = 'x-clawker-unsupported';
export const IGNORED = 'x-clawker-ignored';
export const RENAMED = 'x-clawker-renamed';

const branches = (s: JsonSchema): readonly JsonSchema[] => s.anyOf ?? s.oneOf ?? [s];

const hasType = (s: JsonSchema, t: string): boolean =>
  s.type === t || (Array.isArray(s.type) && s.type.includes(t)) || (t === 'object' && s.properties !== undefined);

/** The schema of the child named `segment` (a key or an index), or undefined when there is none. */
export function childSchema(schema: JsonSchema, segment: string | number): JsonSchema | undefined {
  for (const branch of branches(schema)) {
    if (typeof segment === 'number') {
      if (branch.items) return branch.items;
      continue;
    }
    const prop = branch.properties?.[segment];
    if (prop) return prop;
    if (typeof branch.additionalProperties === 'object' && Object.keys(branch.additionalProperties).length > 0) return branch.additionalProperties;
  }
  return undefined;
}

export function schemaAt(root: JsonSchema, path: readonly (string | number)[]): JsonSchema | undefined {
  let current: JsonSchema | undefined = root;
  for (const segment of path) {
    if (!current) return undefined;
    current = childSchema(current, segment);
  }
  return current;
}

/** Whether `schema` describes a mapping whose keys are free-form (a record, like `agent.env`). */
export function isRecord(schema: JsonSchema): boolean {
  return branches(schema).some(
    (b) => hasType(b, 'object') && !b.properties && typeof b.additionalProperties === 'object' && Object.keys(b.additionalProperties).length > 0,
  );
}

/** Whether unknown keys are rejected here (strict objects, i.e. the firewall section). */
export function isStrictObject(schema: JsonSchema): boolean {
  return branches(schema).some((b) => b.properties !== undefined && b.additionalProperties === false);
}

const propertiesCache = new WeakMap<JsonSchema, Readonly<Record<string, JsonSchema>>>();

/** Named properties of an object schema, across union branches. */
export function propertiesOf(schema: JsonSchema): Readonly<Record<string, JsonSchema>> {
  let out = propertiesCache.get(schema);
  if (!out) {
    const merged: Record<string, JsonSchema> = {};
    for (const b of branches(schema)) Object.assign(merged, b.properties ?? {});
    out = merged;
    propertiesCache.set(schema, out);
  }
  return out;
}

/** Enum values or examples: what completion offers for a scalar. */
export function valueSuggestions(schema: JsonSchema): string[] {
  const out = new Set<string>();
  for (const b of branches(schema)) {
    for (const v of b.enum ?? []) out.add(String(v));
    for (const v of b.examples ?? []) out.add(String(v));
    if (hasType(b, 'boolean')) {
      out.add('true');
      out.add('false');
    }
  }
  return [...out];
}

/** The closest known key, to suggest for a misspelling (Levenshtein distance ≤ 2, or a prefix). */
export function closestKey(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
