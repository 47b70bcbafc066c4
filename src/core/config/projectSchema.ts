/**
 * The project configuration, `.clawker.yaml` (or `.clawker/clawker.yaml`). zod is the single source
 * of truth: types, defaults, hover text and `schemas/clawker.schema.json` all come from here.
 *
 * Every key clawker itself accepts is listed. Keys this extension does not implement yet carry
 * `unsupported()`: they load with a warning, never an error, so real clawker files work as is.
 * Outside the firewall section unknown keys are warnings too (clawker ignores them).
 */
import { z } from 'zod';
import { firewallSchema } from './firewallSchema';
import { UNSUPPORTED } from './jsonSchema';

/** Marks a clawker key this extension accepts but does not act on yet. */
const unsupported = <T extends z.ZodType>(schema: T, description: string): T =>
  schema.meta({ description, [UNSUPPORTED]: true }) as T;

const anything = z.unknown().optional();

export const securitySchema = z
  .looseObject({
    firewall: firewallSchema.prefault({}),
    docker_socket: z
      .boolean()
      .default(false)
      .describe(
        'Mount the Docker socket (`/var/run/docker.sock`, read-write) into the agent container. **Gives the agent full control ' +
          'of your Docker daemon** (and so of your host). Default `false`.',
      ),
    cap_add: z
      .array(z.string())
      .default([])
      .describe('Extra Linux capabilities for the agent container, e.g. `[SYS_PTRACE]`. Default `[]`: agents run fully unprivileged.'),
    enable_host_proxy: z
      .boolean()
      .default(true)
      .describe('Run the host proxy that forwards git HTTPS credentials and opens OAuth URLs in your browser. Default `true`.'),
    git_credentials: unsupported(anything, 'Which git credentials (SSH agent, GPG, HTTPS) are forwarded into the container.'),
  })
  .describe('Container security: firewall rules, Docker socket, capabilities, host proxy.');

export const agentSchema = z
  .looseObject({
    env: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
      .default({})
      .describe('Environment variables set in the agent container. `${VAR}` refers to another variable of the container, e.g. `${SSL_CERT_FILE}`.'),
    from_env: unsupported(anything, 'Host environment variables passed through into the container by name.'),
    post_init: unsupported(anything, 'A script run once inside the container after it is first created.'),
    includes: unsupported(anything, 'Files (instructions, prompts) copied into the agent\'s context.'),
    env_file: unsupported(anything, 'Files of `KEY=value` lines loaded into the container environment.'),
    editor: unsupported(anything, 'The editor (`$EDITOR`) inside the container.'),
    visual: unsupported(anything, 'The visual editor (`$VISUAL`) inside the container.'),
    shell: unsupported(anything, 'The login shell inside the container.'),
    memory: unsupported(anything, 'Memory settings for the agent.'),
    claude_code: unsupported(anything, 'Claude Code settings: config strategy, authentication, plugins.'),
    enable_shared_dir: unsupported(anything, 'Mount a directory shared between agents.'),
  })
  .describe('The agent container: its environment and start-up.');

export const buildSchema = unsupported(
  z.looseObject({
    image: z.string().optional(),
    dockerfile: z.string().optional(),
    packages: z.array(z.string()).optional(),
    stacks: z.array(z.string()).optional(),
    instructions: anything.optional(),
    context: z.string().optional(),
    build_args: anything.optional(),
    inject: anything.optional(),
  }),
  'How the agent image is built: base image, Dockerfile, packages, language stacks, extra instructions.',
);

export const projectSchema = z
  .looseObject({
    version: z.union([z.string(), z.number()]).optional().describe('Schema version of this file (clawker writes `"1"`).'),
    project: z.string().optional().describe('Project name; defaults to the folder name. Names containers and labels.'),
    build: buildSchema,
    agent: agentSchema.prefault({}),
    workspace: unsupported(anything, 'How the workspace is mounted: `remote_path`, `default_mode` (bind or snapshot).'),
    security: securitySchema.prefault({}),
    harnesses: unsupported(anything, 'Agent harnesses (Claude Code and others) and their settings.'),
    aliases: unsupported(anything, 'Command aliases for `clawker` in this project.'),
    loop: unsupported(anything, 'Settings for autonomous agent loops.'),
    monitoring: unsupported(anything, 'Telemetry export (OpenTelemetry) of agent activity.'),
  })
  .describe('Clawker project configuration.');

export type ProjectConfig = z.output<typeof projectSchema>;
