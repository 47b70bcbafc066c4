import { dirname } from 'node:path';

/** The project folder of a project file: `.clawker.yaml`'s folder, or the parent of `.clawker/`. */
export function projectDirOf(file: string): string | undefined {
  if (/(^|[\\/])\.clawker[\\/]clawker\.yaml$/.test(file)) return dirname(dirname(file));
  if (/(^|[\\/])\.clawker\.yaml$/.test(file)) return dirname(file);
  return undefined;
}

/** Whether `file` (a path, `/` or `\\` separated) names a project file: `.clawker.yaml` or `.clawker/clawker.yaml`. */
export const isProjectFilePath = (file: string): boolean => projectDirOf(file) !== undefined;
