/**
 * Loading a configuration file: YAML with positions → schema → semantic checks → one result that
 * every face (CLI, language server, extension) renders. Pure: the caller reads the file.
 */
import { validateFirewall } from '../firewall/ruleValidation';
import type { NormalizedRule } from '../firewall/rule';
import { hasErrors, LineIndex, type OffsetRange, type Problem } from '../problems';
import { parseYaml, type ParsedYaml } from '../yaml/document';
import { checkKeys } from './keyCheck';
import type { ProjectConfig } from './projectSchema';
import { schemaProblems } from './schemaIssues';
import { type ConfigKind, jsonSchemaFor, ZOD_SCHEMAS } from './schemas';
import type { Settings } from './settingsSchema';

interface LoadedFile {
  readonly parsed: ParsedYaml;
  readonly lines: LineIndex;
  /** Problems in source order. */
  readonly problems: readonly Problem[];
  /** True when there is an error: then nothing from this file may be applied. */
  readonly failed: boolean;
}

export interface ProjectLoad extends LoadedFile {
  readonly kind: 'project';
  readonly config?: ProjectConfig;
  /** Project firewall rules (after `add_domains` expansion, defaults and dedup); empty on failure. */
  readonly rules: readonly NormalizedRule[];
}

export interface SettingsLoad extends LoadedFile {
  readonly kind: 'settings';
  readonly config?: Settings;
}

const bySource = (a: Problem, b: Problem): number => a.range.start - b.range.start || a.range.end - b.range.end;

const sectionAt = (value: unknown, path: readonly string[]): unknown =>
  path.reduce<unknown>((v, key) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined), value);

function loadWithSchema(kind: ConfigKind, text: string) {
  const parsed = parseYaml(text);
  const lines = new LineIndex(text);
  const problems: Problem[] = [...parsed.problems];
  if (parsed.value === undefined) return { parsed, lines, problems, data: undefined };
  const jsonSchema = jsonSchemaFor(kind);
  problems.push(...checkKeys(parsed.value, () => parsed.doc, jsonSchema));
  const result = ZOD_SCHEMAS[kind].safeParse(parsed.value);
  if (!result.success) {
    problems.push(...schemaProblems(result.error.issues, parsed.doc, parsed.value, jsonSchema));
    return { parsed, lines, problems, data: undefined };
  }
  return { parsed, lines, problems, data: result.data };
}

/**
 * Keeps a problem's range, and its fixes' ranges, inside the text: the YAML layer widens a position
 * at the very end to one character, and js-yaml can place a mark past the end (found by fuzzing).
 */
function clampedTo(length: number): (p: Problem) => Problem {
  const clamp = (r: OffsetRange): OffsetRange => ({ start: Math.min(r.start, length), end: Math.min(Math.max(r.end, r.start), length) });
  return (p) => ({ ...p, range: clamp(p.range), ...(p.fixes ? { fixes: p.fixes.map((f) => ({ ...f, edits: f.edits.map((e) => ({ ...e, range: clamp(e.range) })) })) } : {}) });
}

export function loadProject(text: string): ProjectLoad {
  const { parsed, lines, problems, data } = loadWithSchema('project', text);
  let rules: readonly NormalizedRule[] = [];
  const config = data as ProjectConfig | undefined;
  if (parsed.value !== undefined) {
    const firewall = validateFirewall(sectionAt(parsed.value, ['security', 'firewall']), {
      get doc() {
        return parsed.doc; // parsed on first use: only a problem needs a position
      },
      text,
      lines,
    });
    problems.push(...firewall.problems);
    rules = firewall.rules;
  }
  const inText = problems.map(clampedTo(text.length)).sort(bySource);
  const failed = hasErrors(inText) || !config;
  return { kind: 'project', parsed, lines, problems: inText, failed, rules: failed ? [] : rules, ...(config && !failed ? { config } : {}) };
}

export function loadSettings(text: string): SettingsLoad {
  const { parsed, lines, problems, data } = loadWithSchema('settings', text);
  const inText = problems.map(clampedTo(text.length)).sort(bySource);
  const config = data as Settings | undefined;
  const failed = hasErrors(inText) || !config;
  return { kind: 'settings', parsed, lines, problems: inText, failed, ...(config && !failed ? { config } : {}) };
}

export function loadConfig(kind: ConfigKind, text: string): ProjectLoad | SettingsLoad {
  return kind === 'project' ? loadProject(text) : loadSettings(text);
}
