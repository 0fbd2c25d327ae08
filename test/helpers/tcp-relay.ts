// A TCP relay for tests of kept-open connections: what a client does with its connections, seen
// from the wire, without touching the TLS inside them.
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface TcpRelay {
  /** `https://127.0.0.1:<port>`: where clients connect instead of the target. */
  url: string;
  /** Connections made so far, and open now. */
  connections: number;
  open: number;
  /** Cut the next request on a connection made before this was set (then it resets itself). */
  cutNextReuse: boolean;
  close(): Promise<void>;
}

/**
 * A TCP relay in front of a TLS server (the workload API): TLS passes through it untouched. It
 * counts the connections made to it and can cut a kept-open one as the next request arrives on
 * it, as a server closing an idle connection just then does.
 */
export async function tcpRelay(target: URL): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  const relay: TcpRelay = {
    url: '',
    connections: 0,
    open: 0,
    cutNextReuse: false,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = createServer((client) => {
    relay.connections++;
    relay.open++;
    client.once('close', () => relay.open--);
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    // Cut only a connection made before the cut was asked for: what it brings now is a request
    // on a connection that was kept open.
    const older = !relay.cutNextReuse;
    client.on('data', (d: Buffer) => {
      if (older && relay.cutNextReuse) {
        relay.cutNextReuse = false;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => client.write(d));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  relay.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return relay;
}
