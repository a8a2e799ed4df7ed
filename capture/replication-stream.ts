// The replication connection, read directly: pg's Client in replication mode, START_REPLICATION
// of a pgoutput slot, and the CopyData messages of the stream handled where pg's Connection
// parses them. pg-logical-replication's service did the same with a cost on every message —
// each one's LSN formatted as a string (and parsed back for keepalives), an EventEmitter2 emit,
// and an async per-message acknowledgement call even with auto-acknowledge off: ≈ 2.4 instead of
// 0.6 µs per message, ≈ 4 µs per change at 1,000 changes/s. Its pgoutput parser is still the one
// used.
//
// Messages (PostgreSQL's streaming replication protocol, CopyData in CopyBoth mode):
// - XLogData 'w': start LSN (8), WAL end (8), send time (8), then one pgoutput message;
// - primary keepalive 'k': WAL end (8), send time (8), reply requested (1);
// - standby status update 'r' (sent): written, flushed, applied LSN (8 each), time (8), reply requested (1).
import pg from 'pg';
import { PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';

export interface ReplicationHandlers {
  /** A decoded pgoutput message, in stream order. */
  data(msg: Pgoutput.Message): void;
  /** A primary keepalive: the server's WAL end. */
  keepalive(walEnd: bigint): void;
  /** The server entered streaming mode (CopyBoth). */
  started(): void;
  /** The connection failed (the stream's promise rejects or resolves too). */
  error(err: Error): void;
}

export interface StreamOptions {
  slot: string;
  publication: string;
}

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_US = 946_684_800_000_000n;

/** The part of pg's Connection the stream uses (pg keeps it on the client, untyped). */
interface ReplicationConnection {
  on(event: 'copyData', listener: (msg: { chunk: Buffer }) => void): void;
  once(event: 'replicationStart', listener: () => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
  stream: { pause(): void; resume(): void };
}

export class ReplicationStream {
  private readonly client: pg.Client;
  private readonly plugin: PgoutputPlugin;
  private connection: ReplicationConnection | undefined;
  private stopped = false;

  constructor(
    clientConfig: pg.ClientConfig,
    private readonly opts: StreamOptions,
    private readonly handlers: ReplicationHandlers,
  ) {
    this.client = new pg.Client({ ...clientConfig, replication: 'database' } as pg.ClientConfig);
    this.client.on('error', (err) => handlers.error(err));
    this.plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [opts.publication], messages: true });
  }

  /**
   * Connects and streams from the slot's confirmed position ('0/0'); resolves or rejects when the
   * stream ends (a destroy() ends it without an error).
   */
  async run(): Promise<void> {
    await this.client.connect();
    const connection = (this.client as unknown as { connection: ReplicationConnection }).connection;
    this.connection = connection;
    connection.once('replicationStart', () => this.handlers.started());
    connection.on('copyData', ({ chunk }) => this.message(chunk));
    try {
      await this.plugin.start(this.client, this.opts.slot, '0/00000000');
    } catch (err) {
      if (!this.stopped) throw err;
    }
  }

  private message(buf: Buffer): void {
    const kind = buf[0];
    if (kind === 0x77) this.handlers.data(this.plugin.parse(buf.subarray(25)));
    else if (kind === 0x6b) this.handlers.keepalive(buf.readBigUInt64BE(1));
  }

  /**
   * A standby status update: `lsn` as written, flushed and applied (the slot's confirmed
   * position); `ping` asks the server to answer with a keepalive at once.
   */
  acknowledge(lsn: bigint, ping: boolean): void {
    if (this.stopped || !this.connection) return;
    const msg = Buffer.alloc(34);
    msg[0] = 0x72; // 'r'
    msg.writeBigUInt64BE(lsn, 1);
    msg.writeBigUInt64BE(lsn, 9);
    msg.writeBigUInt64BE(lsn, 17);
    msg.writeBigInt64BE(BigInt(Date.now()) * 1000n - PG_EPOCH_US, 25);
    msg[33] = ping ? 1 : 0;
    this.connection.sendCopyFromChunk(msg);
  }

  /**
   * Stops reading the socket (backpressure: TCP flow control makes the walsender wait, so the WAL
   * stays on the server instead of piling up here), and starts again.
   */
  pause(): void {
    this.connection?.stream.pause();
  }
  resume(): void {
    this.connection?.stream.resume();
  }

  async destroy(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.client.end().catch(() => undefined);
  }
}
