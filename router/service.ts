// `taskflow router` put together: the Kinesis consumer (packages/stream) feeding one
// ShardRouter per leased shard, the DynamoDB changelog / DLQ / membership projection, the MQTT
// or IoT-data publisher with subscription tracking, the replay API and /metrics.
import type { Server } from 'node:http';
import { clientIdPrefix } from '../lib/authz.js';
import { createDynamoClient, createIotDataClient, createKinesisClient, createKmsClient } from '../lib/aws.js';
import { DynamoDeadLetterStore } from '../lib/dlq.js';
import { createVerifier, servicePassword } from '../lib/jwt.js';
import { createConsumer, type Consumer, ErasedSubjects } from '@taskflow/stream';
import type { Logger } from '../lib/logger.js';
import { consumerProbes, createRegistry, serveMetrics } from '../lib/metrics.js';
import { decryptEvent, readerKeyStore } from '../lib/field-crypto.js';
import { validateEvent } from '../schemas/validate.js';
import type { MqttTlsFiles, RouterConfig } from './config.js';
import { ConfigError } from '../lib/errors.js';
import { readFileSync } from 'node:fs';
import { DynamoChangelogStore } from './dynamo-changelog.js';
import { DynamoMembershipProjection } from '../lib/dynamo-memberships.js';
import { prometheusRouterMetrics } from './metrics.js';
import { PublishPipeline } from './publish-pipeline.js';
import { IotConnectionRevoker, TierConnectionRevoker } from './connection-revoker.js';
import { IotDataPublisher, MqttPublisherPool, type Publisher } from '../lib/publishers.js';
import { startReplayServer } from './replay-server.js';
import { replayPreparer } from './replay.js';
import { PerUserLimiter } from '../lib/user-limits.js';
import { RouterShardProcessor } from './shard-processor.js';
import type { DeadLetterSink } from './shard-router.js';
import type { SequencedChange } from './sequencer.js';
import { DynamoSubscriptionStore } from './subscription-store.js';
import { LIFECYCLE_FILTERS, LiveSubscriptions, parseLifecycleMessage } from '../lib/subscriptions.js';
import { BrokerTier } from '../lib/broker-tier.js';

export interface RunningRouter {
  consumer: Consumer;
  replayUrl: string;
  metricsUrl: string;
  /** 'graceful' checkpoints and releases leases; 'abandon' stops like a crash. */
  stop(mode?: 'graceful' | 'abandon'): Promise<void>;
}

/** Expired subscription entries are deleted at start (in the background) and then this often. */
const SWEEP_INTERVAL_MS = 3600_000;

export async function startRouter(config: RouterConfig, logger: Logger): Promise<RunningRouter> {
  const kinesis = createKinesisClient(config.aws);
  const dynamo = createDynamoClient(config.aws);
  const registry = createRegistry('router');
  const metrics = prometheusRouterMetrics(registry);
  const { workerId } = config;

  const changelog = new DynamoChangelogStore(dynamo, { table: config.tables.changelog, ttlSeconds: config.changelogTtlSeconds });
  // Browsers hold no keys: full payloads and replay answers carry personal fields decrypted
  // (null once shredded); the changelog keeps them as they travelled.
  const sk = config.subjectKeys;
  const keys = sk ? readerKeyStore(sk, dynamo, () => createKmsClient(config.aws)) : undefined;
  const onUnreadable = (err: Error) => logger.warn({ err: err.message }, 'a personal field does not decrypt; published as null');
  const decrypt = keys ? <E extends { data: unknown }>(e: E) => decryptEvent(e, keys, onUnreadable) : undefined;
  // The erased-subjects list (the subject-keys table's tombstones, cached): nothing of an erased
  // person is written to the changelog or published again by a replay, reset or redrive.
  const erased = sk && keys ? new ErasedSubjects({ lookup: (subject) => keys.isDestroyed(subject), ttlMs: sk.cache.ttlMs }) : undefined;
  const decryptChange = decrypt && config.payloadMode === 'full' ? async (c: SequencedChange) => ({ seq: c.seq, event: { ...c.event, envelope: await decrypt(c.event.envelope) } }) : undefined;
  const projection = new DynamoMembershipProjection(dynamo, config.tables.memberships);
  const dlq = new DynamoDeadLetterStore(dynamo, config.tables.dlq);
  const deadLetters: DeadLetterSink = {
    async put(l) {
      const origin: Record<string, string> = { shardId: l.origin.shardId, sequenceNumber: l.origin.sequenceNumber };
      if (l.origin.subSequenceNumber !== undefined) origin.subSequenceNumber = String(l.origin.subSequenceNumber);
      // Keyed by the Kinesis record: reprocessing it after a crash finds the entry already there.
      const dedupeKey = `${origin.shardId}/${origin.sequenceNumber}/${origin.subSequenceNumber ?? ''}`;
      await dlq.put({ source: 'router', reason: l.reason, message: l.message, payload: l.bytes, origin, dedupeKey });
      logger.warn({ reason: l.reason, origin }, 'event dead-lettered');
    },
  };

  const live = new LiveSubscriptions();
  const subscriptionStore = new DynamoSubscriptionStore(dynamo, config.tables.subscriptions);
  // One queue, so a client's subscribe and disconnect are recorded in the order they happened.
  let recording: Promise<void> = Promise.resolve();
  let sweeper: NodeJS.Timeout | undefined;
  // The MQTT pool connects and the subscriptions load while the consumer takes its leases and
  // reads its first batches (on the recovery path after a crash, bench:recovery); nothing is
  // staged before both are done (RouterShardProcessor waits on publisherReady): a change enqueued
  // before the subscriptions are known would be dropped as having no subscriber.
  let tier: BrokerTier | undefined;
  const serviceToken = () => servicePassword(config.mqtt.password, config.jwt, config.serviceUserId);
  const connectPublisher = async (): Promise<Publisher> => {
    if (config.publisher !== 'mqtt') return new IotDataPublisher(createIotDataClient(config.aws));
    if (tier) {
      // The nodes are the subscription source: no store load, sweep or writes.
      await tier.ready();
      logger.info({ nodes: tier.tracker.nodesConnected, sessions: tier.tracker.sessionCount }, 'broker tier connected');
      return tier;
    }
    if (config.subscriptionEvents !== 'off') {
      // load() skips expired entries, so their sweep is not waited for.
      for (const e of await subscriptionStore.load()) live.apply(e);
      const sweep = () => subscriptionStore.sweep().catch((err: unknown) => logger.warn({ err }, 'could not sweep expired subscription entries'));
      void sweep();
      sweeper = setInterval(() => void sweep(), SWEEP_INTERVAL_MS);
      sweeper.unref();
    }
    // Locally the router signs its own service token with the dev secret it verifies with.
    const password = await serviceToken();
    const pool = await MqttPublisherPool.connect({
      url: config.mqtt.url,
      size: config.mqtt.poolSize,
      username: config.mqtt.username,
      ...(password ? { password } : {}),
      // Bound to the service identity like every client id (lib/authz.ts canConnect).
      clientIdPrefix: `${clientIdPrefix(config.serviceUserId)}${workerId}`,
      publishesPerSecond: config.mqtt.publishesPerSecond,
      ...(config.mqtt.tls ? { tls: readTlsFiles(config.mqtt.tls) } : {}),
      ...(config.subscriptionEvents === 'off' ? {} : { subscribe: LIFECYCLE_FILTERS[config.subscriptionEvents] }),
      onMessage: (topic, payload) => {
        const event = parseLifecycleMessage(topic, payload);
        if (!event) return;
        if (event.kind === 'disconnected') metrics.clientDisconnected();
        live.apply(event);
        recording = recording.then(() => subscriptionStore.record(event)).catch((err: unknown) => logger.warn({ err }, 'could not record a subscription event'));
      },
    });
    logger.info({ sessions: live.sessionCount }, 'publisher connected');
    return pool;
  };
  if (config.brokers && config.publisher === 'mqtt') {
    tier = new BrokerTier({
      nodes: config.brokers,
      pool: {
        size: config.mqtt.poolSize,
        username: config.mqtt.username,
        clientIdPrefix: `${clientIdPrefix(config.serviceUserId)}${workerId}`,
        publishesPerSecond: config.mqtt.publishesPerSecond,
        ...(config.mqtt.tls ? { tls: readTlsFiles(config.mqtt.tls) } : {}),
      },
      token: await serviceToken(),
      logger,
      metrics: metrics.tier,
      onEvent: (e) => {
        if (e.kind === 'disconnected') metrics.clientDisconnected();
      },
    });
  }
  const publisherReady = connectPublisher();
  publisherReady.catch(() => {}); // awaited below; this only keeps a failure from going unhandled meanwhile
  let connected: Publisher | undefined;
  const publisher: Publisher = {
    publish: async (topic, payload) => (connected ??= await publisherReady).publish(topic, payload),
    close: async () => (await publisherReady.catch(() => undefined))?.close(),
  };
  // Lifecycle events arrive on the MQTT pool's first connection; without it, publish everywhere.
  const tracking = config.publisher === 'mqtt' && config.subscriptionEvents !== 'off';
  const hasSubscriber = tier ? (topic: string) => tier!.hasSubscriber(topic) : tracking ? (topic: string) => live.hasSubscriber(topic) : null;
  // Revocation names the user's connections from the tracked sessions (client ids are bound to
  // users) and disconnects them through the IoT data plane (locally the broker's same route).
  // In tier mode, on the nodes holding the user's sessions (DELETE /connections/{clientId}), and
  // again on a node that loads later (connection-revoker.ts).
  const iotData = tracking && !tier ? createIotDataClient(config.aws) : undefined;
  const revoker = tier ? new TierConnectionRevoker(tier, { logger }) : iotData ? new IotConnectionRevoker(iotData, (userId) => live.connectionsOf(userId)) : undefined;
  const revocation = revoker ? { revoker, holdTimeoutMs: config.revocationHoldMs, logger } : undefined;
  if (!revocation) logger.warn('no subscription tracking: revoked members are not disconnected before later changes are published');

  const makePipeline = () =>
    new PublishPipeline({
      batcher: { windowMs: config.windowMs, mode: config.payloadMode, gzip: config.gzip, maxBytes: config.maxMessageBytes },
      publisher,
      hasSubscriber,
      metrics: metrics.publish,
      ...(revocation ? { revocation } : {}),
    });
  // Leases get a DynamoDB client (and so a socket pool) of their own: renewals queued behind a
  // burst of changelog writes let leases lapse under load (seen in bench:recovery).
  const leaseDynamo = createDynamoClient(config.aws);
  const consumer = createConsumer({
    name: config.consumerName,
    streamName: config.streamName,
    kinesis,
    dynamo: leaseDynamo,
    leaseTable: config.tables.leases,
    workerId,
    processor: (shardId) =>
      new RouterShardProcessor(shardId, { consumer: config.consumerName, changelog, changelogMode: config.payloadMode, deadLetters, memberships: projection, validate: validateEvent, metrics: metrics.shard, ...(decryptChange ? { decrypt: decryptChange } : {}), ...(erased ? { erased } : {}) }, makePipeline, logger, publisherReady, { windowMs: config.windowMs, checkpointEveryMs: config.checkpointIntervalMs }),
    failoverTimeMs: config.failoverTimeMs,
    pollIntervalMs: config.pollIntervalMs,
    readBudget: config.readBudget,
    minCallSpacingMs: config.minCallSpacingMs,
    fanOut: config.fanOut,
    maxRecords: config.maxRecords,
    metrics: registry,
    logger,
  });

  const verify = createVerifier(config.jwt);
  const replay = await startReplayServer({ store: changelog, verify, memberships: (u) => projection.memberships(u), maxLimit: config.replayMaxLimit, limiter: new PerUserLimiter(config.replayLimits), limits: { maxInFlight: config.replayMaxInFlight }, observe: metrics.replayRequest, logger, ...(decrypt ? { prepare: replayPreparer(decrypt, erased) } : {}) }, config.replayPort);
  // Ready while this instance can hold leases; one holding none still serves replay, so it is ready too.
  const metricsServer = await serveMetrics(registry, { port: config.metricsPort, host: config.metricsHost }, consumerProbes(consumer));
  try {
    await Promise.all([consumer.start(), publisherReady]);
  } catch (err) {
    // As a crash would: the leases lapse after the failover time (the process exits on this).
    clearInterval(sweeper);
    await consumer.stop('abandon');
    throw err;
  }
  logger.info({ replay: replay.url, metrics: metricsServer.url, workerId, publisher: config.publisher, windowMs: config.windowMs, mode: config.payloadMode }, 'router started');

  const close = (s: Server) => new Promise<void>((resolve) => s.close(() => resolve()));
  return {
    consumer,
    replayUrl: replay.url,
    metricsUrl: metricsServer.url,
    async stop(mode = 'graceful') {
      clearInterval(sweeper);
      await consumer.stop(mode);
      replay.server.closeAllConnections();
      await Promise.all([close(replay.server), close(metricsServer.server)]);
      await publisher.close();
      iotData?.destroy();
      await recording;
      kinesis.destroy();
      dynamo.destroy();
      leaseDynamo.destroy();
    },
  };
}

/** The router's mTLS identity from its files; an unreadable file stops the start with its name. */
function readTlsFiles(files: MqttTlsFiles): { ca?: Buffer; cert: Buffer; key: Buffer } {
  const read = (path: string, setting: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(setting, `cannot read ${path}: ${(err as Error).message}`);
    }
  };
  return { ...(files.caFile ? { ca: read(files.caFile, 'ROUTER_MQTT_CA_FILE') } : {}), cert: read(files.certFile, 'ROUTER_MQTT_CERT_FILE'), key: read(files.keyFile, 'ROUTER_MQTT_KEY_FILE') };
}
