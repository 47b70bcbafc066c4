/**
 * agentd: PID 1 of every agent container (`node /opt/clawker/agentd.js -- <command>`).
 *
 * Runs as root with only SETUID, SETGID and KILL, and never runs user-controlled code itself: the
 * command is forked by the native helper as the agent user, in its own process group (owning the
 * terminal when there is one). With the firewall on, the command starts only when the control plane
 * says `start` over the mutual-TLS session (after it has enrolled the container); without a session
 * it never starts. agentd forwards termination signals to the command, reaps every zombie, and exits
 * with the command's status. See config.ts for the CLAWKER_AGENTD_* variables (tests only), and
 * agentd.ts for the logic.
 */
import { agentdArguments, nodeAgentdDeps, runAgentd } from './agentd';

void runAgentd(agentdArguments(process.argv), process.env, nodeAgentdDeps());
