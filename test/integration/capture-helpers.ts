// Shared by the capture integration tests: read back what capture put on a stream, wait for it.
import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { type RecordForm, decodeRecord, detectForm } from '@taskflow/stream/codec';

export interface StreamedEvent {
  id: string;
  type: string;
  workspaceid: string;
  projectid?: string;
  subject: string;
  data: {
    op: string;
    table: string;
    key: Record<string, unknown>;
    before: Record<string, unknown> | null;
    after: Record<string, unknown> | null;
    changed?: string[];
    omitted?: string[];
    tables?: string[];
    source: { lsn: string; txIndex: number; txSize: number; snapshot: boolean };
  };
}

/** Reads a stream from its start, shard by shard, continuing where the last call stopped. */
export class StreamReader {
  private iterators = new Map<string, string | undefined>();
  /** Every event read so far, in stream order per shard (shards concatenated as read). */
  readonly events: StreamedEvent[] = [];
  /** The raw JSON of every event, parallel to `events`. */
  readonly raw: string[] = [];
  /** Kinesis records read, by form (what the producer's compression and aggregation made). */
  readonly forms = new Map<RecordForm, number>();

  constructor(
    private readonly client: KinesisClient,
    private readonly streamName: string,
  ) {}

  async poll(): Promise<number> {
    const before = this.events.length;
    const shards = await this.client.send(new ListShardsCommand({ StreamName: this.streamName }));
    for (const shard of shards.Shards ?? []) {
      const id = shard.ShardId!;
      let iterator = this.iterators.get(id);
      if (iterator === undefined) {
        const it = await this.client.send(new GetShardIteratorCommand({ StreamName: this.streamName, ShardId: id, ShardIteratorType: 'TRIM_HORIZON' }));
        iterator = it.ShardIterator;
      }
      for (;;) {
        if (!iterator) break;
        const out = await this.client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
        for (const r of out.Records ?? []) {
          const form = detectForm(r.Data!);
          this.forms.set(form, (this.forms.get(form) ?? 0) + 1);
          for (const user of decodeRecord(r.Data!)) {
            const text = Buffer.from(user).toString('utf8');
            this.raw.push(text);
            this.events.push(JSON.parse(text) as StreamedEvent);
          }
        }
        iterator = out.NextShardIterator;
        if ((out.Records ?? []).length === 0) break;
      }
      this.iterators.set(id, iterator);
    }
    return this.events.length - before;
  }

  ids(): Set<string> {
    return new Set(this.events.map((e) => e.id));
  }
}

