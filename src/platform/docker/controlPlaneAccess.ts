/**
 * The control plane of a stack, as a client: its API through a docker exec session into the
 * stack's control-plane container (controlPlaneTransport.ts), on whatever engine `docker` reaches.
 */
import type Docker from 'dockerode';
import { CONTROL_PLANE_API_SOCKET } from '../../core/stack/controlPlaneApi';
import type { StackNames } from '../../core/stack/stackNames';
import { ControlPlaneClient } from '../controlPlaneClient';
import { ExecRelayTransport } from '../controlPlaneTransport';

export function controlPlaneOf(docker: Pick<Docker, 'getContainer'>, names: Pick<StackNames, 'controlplane'>, timeoutMs?: number): ControlPlaneClient {
  return new ControlPlaneClient(new ExecRelayTransport(docker, names.controlplane, CONTROL_PLANE_API_SOCKET), timeoutMs);
}
