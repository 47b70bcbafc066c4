/**
 * The engine's host-gateway as a container sees it, when no control plane runs to say (the firewall
 * off): a throwaway container of an image at hand, given host.docker.internal, prints its
 * /etc/hosts. And whether an address is this machine's, which the answer must be for the host proxy
 * to listen on it (core/engine/hostGateway.ts decides).
 */
import { createServer } from 'node:net';
import type Docker from 'dockerode';
import { HOST_GATEWAY_EXTRA_HOST, hostGatewayFromHosts } from '../../core/engine/hostGateway';
import { LABEL_COMPONENT, LABEL_MANAGED } from '../../core/stack/labels';

/** host.docker.internal's IPv4 address in a container of `image` on Docker's default bridge; undefined if it has none. */
export async function probeHostGateway(docker: Docker, image: string): Promise<string | undefined> {
  const container = await docker.createContainer({
    Image: image,
    Entrypoint: ['cat'],
    Cmd: ['/etc/hosts'],
    User: '65534:65534',
    Tty: true, // raw output, no frames to take apart
    Labels: { [LABEL_MANAGED]: 'true', [LABEL_COMPONENT]: 'probe' },
    HostConfig: { NetworkMode: 'bridge', ExtraHosts: [HOST_GATEWAY_EXTRA_HOST], CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges:true'] },
  });
  try {
    await container.start();
    await container.wait();
    const out = await container.logs({ stdout: true, stderr: false, follow: false });
    return hostGatewayFromHosts(Buffer.isBuffer(out) ? out.toString('utf8') : String(out));
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/**
 * Whether `address` is one of this machine's: a socket can be bound to it. (Listing interfaces is
 * not enough: libuv leaves out those without carrier, like docker0 with no container on it, whose
 * address still receives what other bridges send to it.)
 */
export function isLocalAddress(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'EADDRINUSE'));
    server.listen(0, address, () => server.close(() => resolve(true)));
  });
}
