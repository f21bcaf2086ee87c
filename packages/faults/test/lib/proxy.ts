import { createServer, connect, type Server, type Socket } from 'node:net';
import type { ClusterOptions } from '@replica/cluster';

/**
 * A fault-injecting TCP proxy for one link: forwards bytes both ways until `cut()`, which
 * resets every connection and refuses new ones until `restore()`. Put between two plexus
 * nodes with the cluster launcher's `peerAddress` option.
 */
export class FaultProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #cut = false;
  /** Connections accepted and forwarded, and connections refused while cut. */
  forwarded = 0;
  refused = 0;

  private constructor(
    server: Server,
    readonly port: number,
  ) {
    this.#server = server;
  }

  static async start(target: { host: string; port: number }, host = '127.0.0.1'): Promise<FaultProxy> {
    let self: FaultProxy | undefined;
    const server = createServer((client) => {
      if (!self || self.#cut) {
        if (self) self.refused++;
        client.resetAndDestroy();
        return;
      }
      self.forwarded++;
      const upstream = connect({ host: target.host, port: target.port, noDelay: true });
      client.setNoDelay(true);
      const pair: [Socket, Socket] = [client, upstream];
      self.#pairs.add(pair);
      const pairs = self.#pairs;
      const end = () => {
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy: no port');
    self = new FaultProxy(server, address.port);
    return self;
  }

  /** Resets every connection on the link and refuses new ones. */
  cut(): void {
    this.#cut = true;
    for (const [a, b] of this.#pairs) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
    this.#pairs.clear();
  }

  restore(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * A launcher `peerAddress` option that puts a {@link FaultProxy} on the link node `from`
 * dials to node `to` (plexus: the node whose name sorts first dials) and hands it to
 * `started`; every other link is direct.
 */
export function proxyLink(from: string, to: string, started: (proxy: FaultProxy) => void): NonNullable<ClusterOptions['peerAddress']> {
  return async (dialer, peer, address) => {
    if (dialer !== from || peer !== to) return address;
    const proxy = await FaultProxy.start(address);
    started(proxy);
    return { host: '127.0.0.1', port: proxy.port };
  };
}
