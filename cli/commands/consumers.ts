// `taskflow consumers list` and `taskflow consumers reset NAME --to …`: every reader of the change
// stream from its leases (the lease table, one item per consumer and shard) and the stream.
import { type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient, type ShardIteratorType } from '@aws-sdk/client-kinesis';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { parseArgs } from 'node:util';
import { atTimestampOf, DynamoLeaseStore, LATEST, type Lease, liveLeases, listShards, loadConsumerConfig, planReset, type ResetTarget, SHARD_END, TRIM_HORIZON } from '@taskflow/stream';
import { createDynamoClient, createKinesisClient, loadAwsConfig } from '../../lib/aws.js';
import { TaskflowError } from '../../lib/errors.js';
import type { Command } from '../command.js';
import { operatorEnvironment } from '../operator-env.js';

const usage = `usage:
  taskflow consumers list [--json]
      every consumer of the change stream: its shards, who holds them, each checkpoint and how far
      behind the stream's tip it is (one GetRecords call per shard)
  taskflow consumers reset NAME --to trim-horizon|latest|TIME [--force]
      every shard of consumer NAME starts again at the oldest record kept, the tip, or the first
      record that arrived at or after TIME (ISO 8601 with a zone; GetShardIterator AT_TIMESTAMP);
      the processors' checkpoint states are dropped with the old positions. Refused while a
      worker of NAME holds live leases (renewed during KINESIS_FAILOVER_MS, which it waits to
      see) unless --force: its workers then lose their leases at their next renewal and whoever
      takes them starts at the new position.
Settings: DYNAMODB_TABLE_LEASES, CHANGE_STREAM_NAME, KINESIS_FAILOVER_MS and the AWS ones; the
running local stack's when none is set (.taskflow/stack.json).`;

/** Rounds of re-reading and rewriting leases a running worker (--force) renewed meanwhile. */
const RESET_ATTEMPTS = 10;

/** How far a checkpoint is behind the tip, in ms (Kinesis' MillisBehindLatest of the next read); 'done' for a finished shard. */
async function lagOf(kinesis: KinesisClient, streamName: string, lease: Lease): Promise<number | 'done'> {
  if (lease.checkpoint === SHARD_END) return 'done';
  if (lease.checkpoint === LATEST) return 0;
  const timestamp = atTimestampOf(lease.checkpoint);
  const position: { ShardIteratorType: ShardIteratorType; StartingSequenceNumber?: string; Timestamp?: Date } =
    lease.checkpoint === TRIM_HORIZON
      ? { ShardIteratorType: 'TRIM_HORIZON' }
      : timestamp
        ? { ShardIteratorType: 'AT_TIMESTAMP', Timestamp: timestamp }
        : { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: lease.checkpoint };
  const it = await kinesis.send(new GetShardIteratorCommand({ StreamName: streamName, ShardId: lease.leaseKey, ...position }));
  const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator!, Limit: 1 }));
  return (out.Records?.length ?? 0) === 0 && !out.MillisBehindLatest ? 0 : (out.MillisBehindLatest ?? 0);
}

function describeCheckpoint(checkpoint: string): string {
  const timestamp = atTimestampOf(checkpoint);
  return timestamp ? `AT_TIMESTAMP ${timestamp.toISOString()}` : checkpoint;
}

async function consumerNames(dynamo: DynamoDBClient, table: string): Promise<string[]> {
  const doc = DynamoDBDocumentClient.from(dynamo);
  const names = new Set<string>();
  let start: Record<string, unknown> | undefined;
  do {
    const page = await doc.send(new ScanCommand({ TableName: table, ProjectionExpression: 'consumerName', ExclusiveStartKey: start }));
    for (const item of page.Items ?? []) names.add(String(item.consumerName));
    start = page.LastEvaluatedKey;
  } while (start);
  return [...names].sort();
}

function parseTarget(to: string | undefined): ResetTarget {
  if (to === 'trim-horizon') return { to: 'trim-horizon' };
  if (to === 'latest') return { to: 'latest' };
  if (to !== undefined && /^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d))?$/.test(to) && !Number.isNaN(Date.parse(to))) {
    const at = new Date(to);
    if (at.getTime() > Date.now()) throw new TaskflowError('BAD_ARGUMENT', `--to ${to} is in the future`);
    return { to: 'timestamp', at };
  }
  throw new TaskflowError('BAD_ARGUMENT', `--to must be trim-horizon, latest or an ISO 8601 time with a zone, got "${to ?? ''}"`);
}

export const command: Command = {
  summary: 'the stream\'s consumers: list (shards, lag, checkpoints) | reset NAME --to trim-horizon|latest|TIME',
  subcommands: ['list', 'reset'],
  async run(argv) {
    const { positionals, values } = parseArgs({ args: argv, options: { help: { type: 'boolean' }, json: { type: 'boolean' }, to: { type: 'string' }, force: { type: 'boolean' } }, allowPositionals: true });
    const [sub, name, ...extra] = positionals;
    if (values.help) {
      console.log(usage);
      return 0;
    }
    if ((sub !== 'list' && sub !== 'reset') || (sub === 'list' && name !== undefined) || (sub === 'reset' && (!name || !values.to)) || extra.length > 0) {
      console.error(usage);
      return 2;
    }
    const env = operatorEnvironment();
    const settings = loadConsumerConfig(env);
    const aws = loadAwsConfig(env);
    const dynamo = createDynamoClient(aws);
    const kinesis = createKinesisClient(aws);
    try {
      if (sub === 'list') {
        const rows = [];
        for (const consumer of await consumerNames(dynamo, settings.leaseTable)) {
          const leases = (await new DynamoLeaseStore(dynamo, settings.leaseTable, consumer).list()).sort((a, b) => a.leaseKey.localeCompare(b.leaseKey));
          const shards = await Promise.all(leases.map(async (l) => ({ shard: l.leaseKey, owner: l.leaseOwner, checkpoint: describeCheckpoint(l.checkpoint), lagMs: await lagOf(kinesis, settings.streamName, l).catch(() => 'unknown' as const) })));
          rows.push({ consumer, shards });
        }
        if (values.json) {
          console.log(JSON.stringify(rows, null, 1));
          return 0;
        }
        for (const { consumer, shards } of rows) {
          const lags = shards.map((s) => s.lagMs).filter((l): l is number => typeof l === 'number');
          const owners = [...new Set(shards.map((s) => s.owner).filter((o): o is string => o !== null))];
          console.log(`${consumer}: ${shards.length} shard(s), max lag ${lags.length ? `${(Math.max(...lags) / 1000).toFixed(1)} s` : '-'}, workers ${owners.join(', ') || 'none'}`);
          for (const s of shards) console.log(`  ${s.shard}  ${(s.owner ?? '(free)').padEnd(20)}  lag ${typeof s.lagMs === 'number' ? `${(s.lagMs / 1000).toFixed(1)} s` : s.lagMs}  checkpoint ${s.checkpoint}`);
        }
        if (rows.length === 0) console.log(`no consumer has leases in ${settings.leaseTable}`);
        return 0;
      }

      const target = parseTarget(values.to);
      const store = new DynamoLeaseStore(dynamo, settings.leaseTable, name!);
      const before = await store.list();
      if (before.some((l) => l.leaseOwner !== null) && !values.force) {
        console.log(`watching ${name}'s leases for ${settings.failoverTimeMs} ms (KINESIS_FAILOVER_MS) to see whether a worker renews them…`);
        await new Promise((r) => setTimeout(r, settings.failoverTimeMs));
        const live = liveLeases(before, await store.list());
        if (live.length > 0) {
          const workers = [...new Set(live.map((l) => l.leaseOwner))].join(', ');
          console.error(`refused: consumer ${name} holds live leases (${live.length} shard(s), workers ${workers}); stop it first, or --force (its workers lose the leases at their next renewal and resume from the new position)`);
          return 1;
        }
      }
      // A running worker (--force) may renew a lease between our read and our write: read again and
      // retry the ones it won (each write is conditional on the counter just read).
      const shards = await listShards(kinesis, settings.streamName);
      let plan = planReset(await store.list(), shards, target);
      let lost: string[] = [];
      for (let attempt = 0; attempt < RESET_ATTEMPTS; attempt++) {
        if (attempt > 0) plan = planReset(await store.list(), shards.filter((s) => lost.includes(s.shardId)), target);
        lost = [];
        for (const r of plan.replace) if (!(await store.replace(r.next, r.expectedCounter))) lost.push(r.next.leaseKey);
        for (const l of plan.create) if (!(await store.create(l))) lost.push(l.leaseKey);
        if (attempt === 0) for (const d of plan.delete) await store.delete(d.leaseKey, d.expectedCounter);
        if (lost.length === 0) break;
      }
      if (lost.length > 0) {
        console.error(`a worker kept writing ${lost.join(', ')}: not reset; stop consumer ${name} and run the command again`);
        return 1;
      }
      const where = target.to === 'timestamp' ? `the first record at or after ${target.at.toISOString()}` : target.to;
      console.log(`${name}: ${shards.length} shard(s) reset to ${where}; checkpoint states dropped`);
      return 0;
    } finally {
      dynamo.destroy();
      kinesis.destroy();
    }
  },
};
