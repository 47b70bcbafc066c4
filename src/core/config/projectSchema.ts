/**
 * The project configuration, `.clawker.yaml` (or `.clawker/clawker.yaml`). zod is the single source
 * of truth: types, defaults, hover text and `schemas/clawker.schema.json` all come from here.
 *
 * Every key clawker itself accepts is listed, including keys of older clawker versions that current
 * clawker ignores. Keys this extension does not implement yet are `unsupported(...)`: they load with a
 * warning, never an error, so real clawker files work as is. Outside the firewall section unknown
 * keys are warnings too, as clawker ignores them.
 */
import { z } from 'zod';
import { ignored, unsupported } from './compat';
import { firewallSchema } from './firewallSchema';

const envValue = z.union([z.string(), z.number(), z.boolean()]);

export const securitySchema = z
  .looseObject({
    firewall: firewallSchema.prefault({}),
    docker_socket: z
      .boolean()
      .default(false)
      .describe(
        'Mount the Docker socket (`/var/run/docker.sock`, read-write) into the agent container. **Gives the agent full control ' +
          'of your Docker daemon**, and so of your host. Default `false`.',
      ),
    cap_add: z
      .array(z.string())
      .default([])
      .describe('Extra Linux capabilities for the agent container, e.g. `[SYS_PTRACE]`. Default `[]`: agents run fully unprivileged.'),
    enable_host_proxy: z
      .boolean()
      .default(true)
      .describe('Run the host proxy that forwards git HTTPS credentials and opens OAuth URLs in your browser. Default `true`.'),
    git_credentials: unsupported('Which git credentials are forwarded: `forward_https`, `forward_ssh`, `forward_gpg`, `copy_git_config`.'),
    enable_firewall: ignored('the firewall is switched on and off by `firewall.enable` in settings.yaml.'),
    allowed_domains: ignored('use `security.firewall.add_domains`.'),
  })
  .describe('Container security: firewall rules, Docker socket, capabilities, host proxy.');

export const agentSchema = z
  .looseObject({
    env: z
      .record(z.string(), envValue)
      .default({})
      .describe('Environment variables set in the agent container. `${VAR}` refers to another variable of the container, e.g. `${SSL_CERT_FILE}`.'),
    from_env: unsupported('Host environment variables forwarded into the container by name.'),
    env_file: unsupported('Files of `KEY=value` lines (Docker env-file format) loaded into the container environment.'),
    post_init: unsupported('A script run once inside the container after it is created, before the agent starts.'),
    pre_run: unsupported('A script run on every container start, before the agent command.'),
    editor: unsupported('`$EDITOR` inside the container.'),
    visual: unsupported('`$VISUAL` inside the container.'),
    enable_shared_dir: unsupported('Mount `~/.clawker-share` read-only into the container.'),
    claude_code: unsupported('Claude Code settings (clawker now reads them from `harnesses.claude`).'),
    includes: ignored('files are copied into the image with `build.instructions.copy`.'),
    memory: ignored('no replacement.'),
    shell: ignored('no replacement.'),
  })
  .describe('The agent container: its environment and start-up.');

export const buildSchema = z
  .looseObject({
    harness: unsupported('The default harness (agent) when a command does not name one; default `claude`.'),
    packages: unsupported('Debian packages installed in the agent image.'),
    stacks: unsupported('Language stacks installed in the agent image (`node`, `go`, `python`, `rust`, `java`, …).'),
    instructions: unsupported('Extra image build steps: `copy`, `env`, `labels`, `args`, `user_run`, `root_run`.'),
    inject: unsupported('Raw Dockerfile lines inserted at fixed points of the image build.'),
    harnesses: unsupported('Per-harness additions to the image build (`stacks`, `packages`, `inject`).'),
    image: ignored('the base image is built by clawker; use `build.stacks` and `build.packages`.'),
    dockerfile: ignored('use `build.instructions` and `build.inject`.'),
    context: ignored('use `build.instructions.copy`.'),
    build_args: ignored('use `build.instructions.args`.'),
  })
  .describe('How the agent image is built: packages, language stacks, extra instructions.');

export const projectSchema = z
  .looseObject({
    name: z.string().optional().describe('Project name; defaults to the folder name. Names containers and their labels.'),
    build: buildSchema.optional(),
    agent: agentSchema.prefault({}),
    workspace: unsupported('How the workspace is mounted: `default_mode` is `bind` (live) or `snapshot` (an isolated copy).'),
    security: securitySchema.prefault({}),
    harnesses: unsupported('Agent harnesses (Claude Code and others) and their settings, by name.'),
    aliases: unsupported('Command aliases for `clawker` in this project.'),
    bundles: unsupported('Bundle sources (git or local) that provide harnesses, stacks and monitoring extensions.'),
    monitor: unsupported('Monitoring extensions of this project.'),
    stacks: unsupported('A registry of local stack definitions, by name.'),
    version: ignored('clawker no longer versions this file.'),
    project: ignored('the project name is `name` (or the folder name).'),
    default_image: ignored('the base image is built by clawker.'),
    loop: ignored('autonomous loop settings were removed from clawker.'),
  })
  .describe('Clawker project configuration.');

export type ProjectConfig = z.output<typeof projectSchema>;
