// A TCP forwarder whose connections a test can cut, like a network dropping the socket under a
// client without telling either side in advance.
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private server!: Server;
  private readonly pairs = new Set<[Socket, Socket]>();
  port = 0;
  accepted = 0;
  /** While true, new connections are dropped at once (the network is down). */
  refusing = false;

  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<this> {
    this.server = createServer((inbound) => {
      if (this.refusing) {
        inbound.destroy();
        return;
      }
      this.accepted += 1;
      const outbound = createConnection(this.target);
      inbound.setNoDelay(true);
      outbound.setNoDelay(true);
      const pair: [Socket, Socket] = [inbound, outbound];
      this.pairs.add(pair);
      const end = (): void => {
        this.pairs.delete(pair);
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', end).on('close', end);
      outbound.on('error', end).on('close', end);
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get open(): number {
    return this.pairs.size;
  }

  /** Destroys every connection through the proxy; new ones are accepted. */
  cut(): void {
    for (const [a, b] of [...this.pairs]) {
      a.destroy();
      b.destroy();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
