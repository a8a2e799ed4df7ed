// `taskflow notifications` put together: the Kinesis consumer (packages/stream, consumer name
// `notifications`) feeding one NotificationShardProcessor per leased shard; the inbox, watcher and
// membership tables (DynamoDB); the router's publisher (lib/publishers.ts) for live delivery; the
// dead-letter store; the inbox API and /metrics.
import type { Server } from 'node:http';
import { clientIdPrefix } from '../lib/authz.js';
import { BrokerTier, type TierMetrics } from '../lib/broker-tier.js';
import { createDynamoClient, createIotDataClient, createKinesisClient } from '../lib/aws.js';
import { consumerPreparation } from '../lib/consumer-reading.js';
import { deadLetterSink } from '@taskflow/stream';
import { DynamoDeadLetterStore } from '../lib/dlq.js';
import { DynamoMembershipProjection } from '../lib/dynamo-memberships.js';
import { createVerifier, servicePassword } from '../lib/jwt.js';
import { createConsumer, type Consumer } from '@taskflow/stream';
import { createLogger, type Logger } from '../lib/logger.js';
import { PerUserLimiter } from '../lib/user-limits.js';
import { consumerProbes, createRegistry, serveMetrics } from '../lib/metrics.js';
import { IotDataPublisher, MqttPublisherPool, type Publisher } from '../lib/publishers.js';
import { validateEvent } from '../schemas/validate.js';
import { startInboxServer } from './api.js';
import type { NotificationsConfig } from './config.js';
import { PublishingDelivery } from './delivery.js';
import { DynamoInbox } from './inbox.js';
import { prometheusNotificationMetrics } from './metrics.js';
import type { PipelineDeps } from './pipeline.js';
import { NOTIFICATIONS_DLQ_SOURCE } from './redrive.js';
import { NotificationShardProcessor } from './shard-processor.js';
import { DynamoWatcherStore } from './watchers.js';

export interface RunningNotifications {
  consumer: Consumer;
  apiUrl: string;
  metricsUrl: string;
  /** 'graceful' releases leases; 'abandon' stops like a crash. */
  stop(mode?: 'graceful' | 'abandon'): Promise<void>;
}

/** How long a graceful stop waits for the batches in flight before it closes the publisher under them. */
const STOP_GRACE_MS = 5000;

export async function connectPublisher(config: NotificationsConfig, workerId: string, logger?: Logger, tierMetrics?: TierMetrics): Promise<Publisher> {
  if (config.publisher === 'iot-data') return new IotDataPublisher(createIotDataClient(config.aws));
  // Locally the service signs its own token with the dev secret it verifies with, as the router does.
  const password = await servicePassword(config.mqtt.password, config.jwt, config.serviceUserId);
  if (config.brokers) {
    // The self-hosted tier (NOTIFICATIONS_BROKERS), as the router's: each notification goes to the
    // nodes where its user's topic has a subscriber, none if nobody listens (the inbox has it).
    // Ready once every node is loaded or found down: nothing is consumed before that.
    const tier = new BrokerTier({
      nodes: config.brokers,
      pool: {
        size: config.mqtt.poolSize,
        username: config.mqtt.username,
        clientIdPrefix: `${clientIdPrefix(config.serviceUserId)}${workerId}`,
        publishesPerSecond: config.mqtt.publishesPerSecond,
      },
      token: password,
      tokenHint: "check NOTIFICATIONS_MQTT_PASSWORD and NOTIFICATIONS_SERVICE_USER, and the node's BROKER_PUBLISHER_USER_IDS and JWT settings",
      logger: logger ?? createLogger('notifications', 'silent'),
      ...(tierMetrics ? { metrics: tierMetrics } : {}),
    });
    try {
      await tier.ready();
    } catch (err) {
      await tier.close();
      throw err;
    }
    logger?.info({ nodes: tier.tracker.nodesConnected, sessions: tier.tracker.sessionCount }, 'broker tier connected');
    return tier;
  }
  return MqttPublisherPool.connect({
    url: config.mqtt.url,
    size: config.mqtt.poolSize,
    username: config.mqtt.username,
    ...(password ? { password } : {}),
    // Bound to the service identity like every client id (lib/authz.ts canConnect).
    clientIdPrefix: `${clientIdPrefix(config.serviceUserId)}${workerId}`,
    publishesPerSecond: config.mqtt.publishesPerSecond,
  });
}

/** The pipeline's ports over DynamoDB and a publisher (the service and `taskflow notifications redrive`). */
export function pipelineDeps(config: NotificationsConfig, dynamo: ReturnType<typeof createDynamoClient>, publisher: Publisher): PipelineDeps & { inbox: DynamoInbox; memberships: DynamoMembershipProjection } {
  const memberships = new DynamoMembershipProjection(dynamo, config.tables.memberships);
  return {
    inbox: new DynamoInbox(dynamo, config.tables.inbox),
    watchers: new DynamoWatcherStore(dynamo, config.tables.watchers),
    memberships,
    delivery: new PublishingDelivery(publisher, memberships),
  };
}

export async function startNotifications(config: NotificationsConfig, logger: Logger): Promise<RunningNotifications> {
  const kinesis = createKinesisClient(config.aws);
  const dynamo = createDynamoClient(config.aws);
  const registry = createRegistry('notifications');
  const metrics = prometheusNotificationMetrics(registry);
  const publisher = await connectPublisher(config, config.consumer.workerId, logger, metrics.tier);
  const deps = pipelineDeps(config, dynamo, publisher);
  const dlq = new DynamoDeadLetterStore(dynamo, config.tables.dlq);
  const deadLetters = deadLetterSink(dlq, NOTIFICATIONS_DLQ_SOURCE, logger);
  const sk = config.subjectKeys;
  // Decrypt, and the erased-subjects check: a replayed or late event of an erased person is blanked before it is applied.
  const prepare = consumerPreparation(sk, dynamo, config.aws, (err) => logger.warn({ err: err.message }, 'a comment body does not decrypt; read as empty'));

  const consumer = createConsumer({
    ...config.consumer,
    name: config.consumerName,
    kinesis,
    dynamo,
    processor: (shardId) => new NotificationShardProcessor(shardId, { consumer: config.consumerName, ...deps, deadLetters, validate: validateEvent, metrics: metrics.notifier, ...prepare }),
    metrics: registry,
    logger,
  });

  const api = await startInboxServer({ inbox: deps.inbox, memberships: deps.memberships, verify: createVerifier(config.jwt), maxPage: config.maxPage, limiter: new PerUserLimiter(config.limits), metrics: metrics.api, logger }, config.port);
  const metricsServer = await serveMetrics(registry, { port: config.metricsPort, host: config.metricsHost }, consumerProbes(consumer));
  await consumer.start();
  logger.info({ api: api.url, metrics: metricsServer.url, publisher: config.publisher, ...(config.brokers ? { brokers: config.brokers.length } : {}), workerId: config.consumer.workerId }, 'notifications started');

  const close = (s: Server) => new Promise<void>((resolve) => s.close(() => resolve()));
  return {
    consumer,
    apiUrl: api.url,
    metricsUrl: metricsServer.url,
    async stop(mode = 'graceful') {
      // The batches in flight finish first (delivered, then checkpointed). One waiting on a publish
      // the broker never acknowledges (it refused it and closed the connection; the client sends
      // it again after every reconnect) would hold the stop forever: after the grace the publisher
      // is closed, which fails that publish, and the batch is left to the next holder of its shard.
      const stopping = consumer.stop(mode);
      const giveUp = setTimeout(() => {
        logger.warn({ graceMs: STOP_GRACE_MS }, 'batches still in flight at stop: closing the publisher');
        void publisher.close();
      }, STOP_GRACE_MS);
      await stopping;
      clearTimeout(giveUp);
      api.server.closeAllConnections();
      await Promise.all([close(api.server), close(metricsServer.server)]);
      await publisher.close();
      kinesis.destroy();
      dynamo.destroy();
    },
  };
}
