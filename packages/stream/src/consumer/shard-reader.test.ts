// The polling reader's recovery paths that kinesalite cannot produce on demand (iterators expire
// after 5 minutes there; it never throttles): a scripted client answers each call in turn.
import { describe, expect, it } from '@jest/globals';
import {
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  ProvisionedThroughputExceededException,
} from '@aws-sdk/client-kinesis';
import { PollingShardReader, THROTTLED_ATTEMPTS } from './shard-reader.js';

type Call = { command: string; input: Record<string, unknown> };

function scriptedClient(answers: ((input: Record<string, unknown>) => unknown)[]) {
  const calls: Call[] = [];
  const client = {
    send: async (command: GetRecordsCommand | GetShardIteratorCommand) => {
      const input = command.input as unknown as Record<string, unknown>;
      calls.push({ command: command.constructor.name, input });
      const answer = answers.shift();
      if (!answer) throw new Error('unexpected call');
      return answer(input);
    },
  };
  return { client: client as unknown as KinesisClient, calls };
}

const record = (seq: string) => ({ SequenceNumber: seq, PartitionKey: 'ws', Data: Buffer.from('{}') });
const meta = { $metadata: {} };

describe('polling shard reader', () => {
  it('replaces an expired iterator with one right after the last record read', async () => {
    const { client, calls } = scriptedClient([
      () => ({ ShardIterator: 'it-1' }),
      () => ({ Records: [record('100'), record('101')], NextShardIterator: 'it-2', MillisBehindLatest: 5 }),
      () => {
        throw new ExpiredIteratorException({ message: 'expired', ...meta });
      },
      () => ({ ShardIterator: 'it-3' }),
      () => ({ Records: [record('102')], NextShardIterator: undefined, MillisBehindLatest: 0 }),
    ]);
    const reader = new PollingShardReader({ kinesis: client, streamName: 's', idlePollMs: 0, minCallSpacingMs: 0 });
    const sub = reader.open('shard-1', { type: 'AT_SEQUENCE_NUMBER', sequenceNumber: '99' });
    const signal = new AbortController().signal;
    expect(await sub.next(signal)).toMatchObject({ millisBehindLatest: 5, shardEnd: false, records: [{ sequenceNumber: '100' }, { sequenceNumber: '101' }] });
    expect(await sub.next(signal)).toMatchObject({ shardEnd: true, records: [{ sequenceNumber: '102' }] });
    expect(calls.filter((c) => c.command === 'GetShardIteratorCommand').map((c) => c.input)).toEqual([
      { StreamName: 's', ShardId: 'shard-1', ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: '99' },
      { StreamName: 's', ShardId: 'shard-1', ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: '101' },
    ]);
    expect(await sub.next(signal)).toEqual({ records: [], millisBehindLatest: 0, shardEnd: true });
  });

  it('backs off on throttling and retries the same iterator', async () => {
    const { client, calls } = scriptedClient([
      () => ({ ShardIterator: 'it-1' }),
      () => {
        throw new ProvisionedThroughputExceededException({ message: 'slow down', ...meta });
      },
      () => {
        throw new ProvisionedThroughputExceededException({ message: 'slow down', ...meta });
      },
      () => ({ Records: [record('7')], NextShardIterator: 'it-2' }),
    ]);
    const reader = new PollingShardReader({
      kinesis: client,
      streamName: 's',
      idlePollMs: 0,
      minCallSpacingMs: 0,
      backoff: { baseMs: 20, maxMs: 1000 },
      random: () => 0.99,
    });
    const started = Date.now();
    const batch = await reader.open('shard-1', { type: 'TRIM_HORIZON' }).next(new AbortController().signal);
    expect(batch.records.map((r) => r.sequenceNumber)).toEqual(['7']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(19 + 39); // 0.99 × 20 ms, then 0.99 × 40 ms
    expect(calls.filter((c) => c.command === 'GetRecordsCommand').map((c) => c.input.ShardIterator)).toEqual(['it-1', 'it-1', 'it-1']);
  });

  it(`rejects with the throttling error after ${THROTTLED_ATTEMPTS} throttled calls in a row, backing off between them`, async () => {
    const throttled = () => {
      throw new ProvisionedThroughputExceededException({ message: 'slow down', ...meta });
    };
    const { client, calls } = scriptedClient([() => ({ ShardIterator: 'it-1' }), ...Array.from({ length: THROTTLED_ATTEMPTS }, () => throttled)]);
    const reader = new PollingShardReader({ kinesis: client, streamName: 's', idlePollMs: 0, minCallSpacingMs: 0, backoff: { baseMs: 1, maxMs: 2 }, random: () => 0.5 });
    await expect(reader.open('shard-1', { type: 'TRIM_HORIZON' }).next(new AbortController().signal)).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(calls.filter((c) => c.command === 'GetRecordsCommand')).toHaveLength(THROTTLED_ATTEMPTS);
  });

  it('does not retry a call that failed otherwise', async () => {
    const { client, calls } = scriptedClient([
      () => ({ ShardIterator: 'it-1' }),
      () => {
        throw new Error('connect ECONNREFUSED');
      },
    ]);
    const reader = new PollingShardReader({ kinesis: client, streamName: 's', idlePollMs: 0, minCallSpacingMs: 0 });
    await expect(reader.open('shard-1', { type: 'TRIM_HORIZON' }).next(new AbortController().signal)).rejects.toThrow('ECONNREFUSED');
    expect(calls).toHaveLength(2);
  });

  it('returns an empty batch at once when stopped while waiting to poll', async () => {
    const { client } = scriptedClient([() => ({ ShardIterator: 'it-1' }), () => ({ Records: [], NextShardIterator: 'it-2' })]);
    const reader = new PollingShardReader({ kinesis: client, streamName: 's', idlePollMs: 10_000, minCallSpacingMs: 0 });
    const sub = reader.open('shard-1', { type: 'LATEST' });
    const abort = new AbortController();
    await sub.next(abort.signal);
    const waiting = sub.next(abort.signal);
    setTimeout(() => abort.abort(), 20);
    expect(await waiting).toEqual({ records: [], millisBehindLatest: 0, shardEnd: false });
  });
});
