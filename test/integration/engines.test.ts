// The local engines are real: each check goes through the same client library and protocol
// that the pipeline uses against AWS and RDS.
import { afterAll, describe, expect, it } from '@jest/globals';
import { ConditionalCheckFailedException, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, PutRecordCommand } from '@aws-sdk/client-kinesis';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import { createIotDataClient } from '../../lib/aws.js';
import {
  awsConfig,
  createTestDatabase,
  createTestStream,
  createTestTables,
  dynamoClient,
  kinesisClient,
  mqttUrl,
  mqttWsUrl,
  startTestBroker,
  stack,
} from '../support/stack.js';

const kinesis = kinesisClient();
const dynamo = dynamoClient();
const clients: MqttClient[] = [];

afterAll(async () => {
  kinesis.destroy();
  dynamo.destroy();
  await Promise.all(clients.map((c) => c.endAsync(true)));
});

async function connect(url: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 100, connectTimeout: 5000, ...options });
  clients.push(client);
  return client;
}

function nextMessage(client: MqttClient, topic: string): Promise<string> {
  return new Promise((resolve) => {
    const onMessage = (t: string, payload: Buffer): void => {
      if (t !== topic) return;
      client.off('message', onMessage);
      resolve(payload.toString('utf8'));
    };
    client.on('message', onMessage);
  });
}

describe('embedded PostgreSQL', () => {
  it('runs with wal_level=logical and the app database migrated in test copies', async () => {
    const url = await createTestDatabase('engines_pg');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      expect((await db.query('SHOW wal_level')).rows[0].wal_level).toBe('logical');
      expect(Number((await db.query('SHOW server_version_num')).rows[0].server_version_num)).toBeGreaterThanOrEqual(170000);
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM schema_migrations`);
      expect(rows[0].n).toBeGreaterThan(0);
    } finally {
      await db.end();
    }
  });

  it('shows a committed row through a logical replication slot (test_decoding)', async () => {
    const db = new pg.Client({ connectionString: await createTestDatabase('engines_slot') });
    await db.connect();
    try {
      await db.query('CREATE TABLE probe (id int PRIMARY KEY, note text)');
      await db.query(`SELECT pg_create_logical_replication_slot('engines_probe', 'test_decoding')`);
      await db.query(`INSERT INTO probe VALUES (1, 'through the WAL')`);
      const { rows } = await db.query<{ data: string }>(`SELECT data FROM pg_logical_slot_get_changes('engines_probe', NULL, NULL)`);
      expect(rows.map((r) => r.data)).toEqual([
        expect.stringMatching(/^BEGIN \d+$/),
        `table public.probe: INSERT: id[integer]:1 note[text]:'through the WAL'`,
        expect.stringMatching(/^COMMIT \d+$/),
      ]);
      await db.query(`SELECT pg_drop_replication_slot('engines_probe')`);
    } finally {
      await db.end();
    }
  });

  it('streams a committed row over the replication protocol with pgoutput', async () => {
    const url = await createTestDatabase('engines_pgoutput');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const service = new LogicalReplicationService({ connectionString: url }, { acknowledge: { auto: true, timeoutSeconds: 1 } });
    try {
      await db.query('CREATE TABLE probe (id int PRIMARY KEY, note text)');
      await db.query('CREATE PUBLICATION engines_pub FOR TABLE probe');
      await db.query(`SELECT pg_create_logical_replication_slot('engines_stream', 'pgoutput')`);
      const inserted = new Promise<Record<string, unknown>>((resolve) => {
        service.on('data', (_lsn: string, msg: { tag: string; new?: Record<string, unknown> }) => {
          if (msg.tag === 'insert' && msg.new) resolve(msg.new);
        });
      });
      service.on('error', () => undefined);
      void service.subscribe(new PgoutputPlugin({ protoVersion: 1, publicationNames: ['engines_pub'] }), 'engines_stream').catch(() => undefined);
      await db.query(`INSERT INTO probe VALUES (7, 'streamed')`);
      expect(await inserted).toEqual({ id: 7, note: 'streamed' });
    } finally {
      await service.stop();
      await db.end();
    }
  });
});

describe('kinesalite', () => {
  it('has the change stream ACTIVE with its shards', async () => {
    const { Shards } = await kinesis.send(new ListShardsCommand({ StreamName: stack().kinesis.streamName }));
    expect(Shards).toHaveLength(stack().kinesis.shardCount);
  });

  it('reads back a record put through the AWS SDK', async () => {
    const streamName = await createTestStream('engines', 1);
    const data = Buffer.from(JSON.stringify({ hello: 'kinesis' }));
    const put = await kinesis.send(new PutRecordCommand({ StreamName: streamName, PartitionKey: 'ws-1', Data: data }));
    const { ShardIterator } = await kinesis.send(
      new GetShardIteratorCommand({ StreamName: streamName, ShardId: put.ShardId, ShardIteratorType: 'TRIM_HORIZON' }),
    );
    const { Records } = await kinesis.send(new GetRecordsCommand({ ShardIterator }));
    expect(Records?.map((r) => [r.SequenceNumber, r.PartitionKey, Buffer.from(r.Data!).toString()])).toEqual([
      [put.SequenceNumber, 'ws-1', '{"hello":"kinesis"}'],
    ]);
  });
});

describe('dynalite', () => {
  it('round-trips an item and enforces conditional writes', async () => {
    const { leases } = await createTestTables('engines', ['leases']);
    const item = { consumerName: { S: 'engines' }, leaseKey: { S: 'shardId-000000000000' }, leaseCounter: { N: '1' }, checkpoint: { S: 'TRIM_HORIZON' } };
    await dynamo.send(new PutItemCommand({ TableName: leases, Item: item, ConditionExpression: 'attribute_not_exists(leaseKey)' }));
    const { Item } = await dynamo.send(new GetItemCommand({ TableName: leases, Key: { consumerName: item.consumerName, leaseKey: item.leaseKey }, ConsistentRead: true }));
    expect(Item).toEqual(item);
    await expect(
      dynamo.send(new PutItemCommand({ TableName: leases, Item: item, ConditionExpression: 'attribute_not_exists(leaseKey)' })),
    ).rejects.toBeInstanceOf(ConditionalCheckFailedException);
  });
});

describe('MQTT broker', () => {
  it('delivers a message published over TCP to a WebSocket subscriber', async () => {
    const topic = `taskflow/v1/ws/engines/projects/${Date.now()}`;
    const subscriber = await connect(mqttWsUrl());
    await subscriber.subscribeAsync(topic, { qos: 1 });
    const received = nextMessage(subscriber, topic);
    const publisher = await connect(mqttUrl());
    await publisher.publishAsync(topic, 'over tcp', { qos: 1 });
    expect(await received).toBe('over tcp');
  });

  it('delivers an IoT data-plane Publish (HTTP) to a WebSocket subscriber', async () => {
    const topic = `taskflow/v1/ws/engines/users/${Date.now()}`;
    const subscriber = await connect(mqttWsUrl());
    await subscriber.subscribeAsync(topic, { qos: 1 });
    const received = nextMessage(subscriber, topic);
    const iot = createIotDataClient({ ...awsConfig(), iotDataEndpoint: stack().iot.dataEndpoint });
    try {
      await iot.send(new PublishCommand({ topic, qos: 1, payload: Buffer.from('over https') }));
    } finally {
      iot.destroy();
    }
    expect(await received).toBe('over https');
  });

  it('comes back on the same ports after a restart, and clients reconnect', async () => {
    const broker = await startTestBroker();
    try {
      const topic = 'taskflow/v1/ws/restart/projects/p';
      const subscriber = await connect(broker.wsUrl, { clean: true });
      await broker.restart();
      await new Promise<void>((resolve) => subscriber.once('connect', () => resolve()));
      // A fresh broker has no sessions: the client subscribes again, as the SDK does on reconnect.
      await subscriber.subscribeAsync(topic, { qos: 1 });
      const received = nextMessage(subscriber, topic);
      const publisher = await connect(broker.tcpUrl);
      await publisher.publishAsync(topic, 'after restart', { qos: 1 });
      expect(await received).toBe('after restart');
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
      await broker.stop();
    }
  });
});
