/**
 * Markers for keys that real clawker files contain but this extension does not act on. They keep
 * clawker's files loading as is: each such key is a warning, never an error.
 */
import { z } from 'zod';
import { IGNORED, RENAMED, UNSUPPORTED } from './jsonSchema';

/** A clawker key this extension accepts but does not implement yet. */
export const unsupported = (description: string, schema: z.ZodType = z.unknown()) =>
  schema.optional().meta({ description, [UNSUPPORTED]: true });

/** A key older clawker versions read and current ones ignore; `why` says what replaced it. */
export const ignored = (why: string) => z.unknown().optional().meta({ description: `No longer read by clawker: ${why}`, [IGNORED]: why });

/** A key still read, under an older name: `instead` says what to write now (a warning, never an error). */
export const renamed = <T extends z.ZodType>(schema: T, instead: string, description: string) => schema.optional().meta({ description, [RENAMED]: instead });
