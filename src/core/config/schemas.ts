import { z } from 'zod';
import type { JsonSchema } from './jsonSchema';
import { projectSchema } from './projectSchema';
import { settingsSchema } from './settingsSchema';

export type ConfigKind = 'project' | 'settings';

export const ZOD_SCHEMAS = { project: projectSchema, settings: settingsSchema } as const;

/** File names under `schemas/` that hold the generated JSON Schemas. */
export const SCHEMA_FILES: Record<ConfigKind, string> = { project: 'clawker.schema.json', settings: 'settings.schema.json' };

const cache = new Map<ConfigKind, JsonSchema>();

/** The JSON Schema generated from the zod schema: what users' other tools and our views read. */
export function jsonSchemaFor(kind: ConfigKind): JsonSchema {
  let schema = cache.get(kind);
  if (!schema) {
    schema = {
      ...(z.toJSONSchema(ZOD_SCHEMAS[kind], { io: 'input', unrepresentable: 'any' }) as JsonSchema),
      title: kind === 'project' ? 'Clawker project configuration (.clawker.yaml)' : 'Clawker settings (settings.yaml)',
    };
    cache.set(kind, schema);
  }
  return schema;
}

/** Which schema a file follows, from its name. */
export function configKindOf(fileName: string): ConfigKind {
  return /(^|[\\/])settings\.ya?ml$/.test(fileName) ? 'settings' : 'project';
}
