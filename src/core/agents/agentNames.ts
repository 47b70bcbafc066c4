/**
 * Names of agents, projects and their containers. An agent container is called
 * `<stack prefix>.<project>.<agent>` (`clawker.web.dev`), and the same string is its session
 * certificate's common name and DNS name. So every part is a DNS label in lower case: letters,
 * digits and '-', starting and ending with a letter or digit. No '.' or '_' inside a part: the
 * dots separate the parts (a name splits one way only), and '_' is not valid in a DNS name. Lower
 * case only: Docker's DNS does not tell `Dev` from `dev`. Pure.
 */

/** The agent a command means when it names none and the project has no agent yet (or `run`/`create`). */
export const DEFAULT_AGENT_NAME = 'dev';

/** An agent name is typed by the user: it is checked, never rewritten. */
export const MAX_AGENT_NAME_LENGTH = 32;
/** A project name comes from `name:` or the folder: it is rewritten into the alphabet, then cut to this. */
export const MAX_PROJECT_NAME_LENGTH = 40;
/** The container name is the session certificate's CN, and a CN has at most 64 characters (RFC 5280). */
export const MAX_CONTAINER_NAME_LENGTH = 64;

const PART = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

const describe = (what: string, value: string): string => `${what} ${JSON.stringify(value)}`;

/** Why `agent` cannot name an agent, or undefined when it can. */
export function agentNameProblem(agent: string): string | undefined {
  if (agent.length === 0) return 'the agent name is empty';
  if (agent.length > MAX_AGENT_NAME_LENGTH) return `${describe('agent name', agent)} has ${agent.length} characters; at most ${MAX_AGENT_NAME_LENGTH}`;
  if (/[A-Z]/.test(agent) && PART.test(agent.toLowerCase())) {
    return `${describe('agent name', agent)} has upper-case letters; use ${JSON.stringify(agent.toLowerCase())} (container names double as DNS names, which ignore case)`;
  }
  if (!PART.test(agent)) {
    return `${describe('agent name', agent)}: use lower-case letters, digits and '-', starting and ending with a letter or digit (no '.', '_' or spaces: the name is part of a DNS name)`;
  }
  return undefined;
}

/** Why `project` cannot name a project (after sanitising), or undefined. */
export function projectNameProblem(project: string): string | undefined {
  if (project.length === 0) return 'the project name is empty';
  if (project.length > MAX_PROJECT_NAME_LENGTH) return `${describe('project name', project)} has ${project.length} characters; at most ${MAX_PROJECT_NAME_LENGTH}`;
  if (!PART.test(project)) return `${describe('project name', project)}: use lower-case letters, digits and '-', starting and ending with a letter or digit`;
  return undefined;
}

/**
 * A project name in the container-name alphabet: lower case, every run of other characters
 * (spaces, '.', '_', accents…) becomes one '-', no '-' at either end, at most 40 characters.
 * May return '' (nothing usable): the caller says so.
 */
export function sanitizeProjectName(raw: string): string {
  return raw
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // é → e
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_PROJECT_NAME_LENGTH)
    .replace(/-+$/, '');
}

export interface ProjectName {
  readonly name: string;
  readonly source: 'config' | 'folder';
  /** The text the name was made from, when sanitising changed it (the CLI mentions it). */
  readonly from?: string;
}

/**
 * The project's name: `.clawker.yaml`'s `name`, else the workspace folder's name, sanitised. An
 * error names where the name came from and what to do.
 */
export function resolveProjectName(configName: string | undefined, workspaceFolder: string): ProjectName | { readonly error: string } {
  const explicit = configName !== undefined && configName.trim() !== '';
  const raw = explicit ? configName : (workspaceFolder.replace(/[\\/]+$/, '').split(/[\\/]/).pop() ?? '');
  const name = sanitizeProjectName(raw);
  const problem = projectNameProblem(name);
  if (problem) {
    return {
      error: explicit
        ? `the project name ${JSON.stringify(raw)} (name: in .clawker.yaml) has no letters or digits to name containers with; set name: to e.g. "my-project"`
        : `the folder name ${JSON.stringify(raw)} has no letters or digits to name containers with; set name: in .clawker.yaml (e.g. name: my-project)`,
    };
  }
  return { name, source: explicit ? 'config' : 'folder', ...(name !== raw ? { from: raw } : {}) };
}

export class AgentNameError extends Error {
  override readonly name = 'AgentNameError';
}

/** `<stack prefix>.<project>.<agent>`; throws AgentNameError saying which part is wrong. */
export function agentContainerName(stackPrefix: string, project: string, agent: string): string {
  const problem = agentNameProblem(agent) ?? projectNameProblem(project);
  if (problem) throw new AgentNameError(problem);
  const name = `${stackPrefix}.${project}.${agent}`;
  if (name.length > MAX_CONTAINER_NAME_LENGTH) {
    throw new AgentNameError(
      `the container name ${JSON.stringify(name)} has ${name.length} characters; at most ${MAX_CONTAINER_NAME_LENGTH} (it is the agent's certificate name): shorten the agent name or the project's (name: in .clawker.yaml)`,
    );
  }
  return name;
}
