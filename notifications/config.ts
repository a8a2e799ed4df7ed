// The notifications service's configuration, read once from the environment (lib/config.ts fails
// fast naming the bad variable). NOTIFICATION_SETTINGS declares each variable once: loadConfig,
// `taskflow notifications --help` and the reference in notifications/README.md come from it; the
// consumer's own settings are the shared KINESIS_* ones (packages/stream/src/consumer/config.ts).
import { AWS_SETTINGS, type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import { type BrokerNode, brokerNode } from '../lib/broker-tier.js';
import { type Env, intSetting, oneOfSetting, optionalSetting, readSettings, stringSetting, tableEnvVar, uniqueSettings } from '../lib/config.js';
import { DEV_MODE_SETTINGS } from '../lib/dev-mode.js';
import { ConfigError } from '../lib/errors.js';
import { JWT_SETTINGS, type JwtConfig, loadJwtConfig } from '../lib/jwt.js';
import { CONSUMER_SETTINGS, type ConsumerEnvConfig, loadConsumerConfig } from '@taskflow/stream';
import { LOG_SETTINGS } from '../lib/logger.js';
import { METRICS_SETTINGS } from '../lib/metrics.js';
import { SUBJECT_KEY_SETTINGS, type SubjectKeyConfig, readerKeyConfig } from '../lib/subject-keys.js';

export interface NotificationsConfig {
  aws: AwsConfig;
  consumer: ConsumerEnvConfig;
  consumerName: string;
  tables: { dlq: string; inbox: string; watchers: string; memberships: string };
  publisher: 'mqtt' | 'iot-data';
  /** Set: publish to this tier of self-hosted broker nodes (lib/broker-tier.ts) instead of MQTT_URL. */
  brokers?: BrokerNode[];
  mqtt: { url: string; poolSize: number; username: string; password?: string; publishesPerSecond: number };
  /** The token subject of the service's MQTT connections (the broker lets service identities publish). */
  serviceUserId: string;
  jwt: JwtConfig;
  port: number;
  metricsPort: number;
  metricsHost: string;
  /** Upper bound of a list's `limit`, and its default. */
  maxPage: number;
  /** Per user: inbox requests per second, burst, and requests in flight (lib/user-limits.ts). */
  limits: { ratePerSec: number; burst: number; maxConcurrent: number; maxUsers: number };
  /** Subject keys to decrypt comment bodies for @mentions (crypto-shredding); none: an encrypted body mentions nobody. */
  subjectKeys?: SubjectKeyConfig;
}

const table = (key: string, fallback: string, meaning: string) => stringSetting({ name: tableEnvVar(key), default: fallback, meaning });

/** Everything the service reads from the environment (besides the consumer's, AWS, JWT and log settings). */
export const NOTIFICATION_SETTINGS = {
  consumerName: stringSetting({ name: 'NOTIFICATIONS_CONSUMER_NAME', default: 'notifications', meaning: "Name of the service's leases and checkpoints (independent of every other reader's)." }),
  dlqTable: table('dlq', 'taskflow-dlq', 'Dead-letter table (lib/dlq.ts).'),
  inboxTable: table('notifications', 'taskflow-notifications', 'The inbox: one item per (user, event) (notifications/tables.ts).'),
  watchersTable: table('notification-watchers', 'taskflow-notification-watchers', 'Who watches which task from which event on.'),
  membershipsTable: table('notification-memberships', 'taskflow-notification-memberships', "The service's own membership projection: who may read a notification's project."),
  publisher: oneOfSetting({ name: 'NOTIFICATIONS_PUBLISHER', allowed: ['mqtt', 'iot-data'] as const, default: 'mqtt', meaning: 'mqtt: a pool of MQTT connections (MQTT_URL); iot-data: the IoT data-plane Publish API (IOT_DATA_ENDPOINT).' }),
  // The self-hosted tier (infra/aws: the broker StatefulSet's pod DNS names), as the router's ROUTER_BROKERS.
  brokers: optionalSetting({ name: 'NOTIFICATIONS_BROKERS', default: 'none (one broker at MQTT_URL)', meaning: "Comma-separated ws://host:port of the self-hosted broker nodes (needs NOTIFICATIONS_PUBLISHER=mqtt); a notification goes to each node where its user's topic has a subscriber, learned from the nodes' lifecycle events and GET /subscriptions." }),
  mqttUrl: stringSetting({ name: 'MQTT_URL', default: 'mqtt://127.0.0.1:1883', meaning: 'Broker the mqtt publisher connects to.' }),
  mqttConnections: intSetting({ name: 'NOTIFICATIONS_MQTT_CONNECTIONS', default: 2, min: 1, max: 100, meaning: 'MQTT connections of the mqtt publisher; a user topic always uses the same one.' }),
  mqttUsername: stringSetting({ name: 'NOTIFICATIONS_MQTT_USERNAME', default: 'taskflow-notifications', meaning: 'MQTT username of those connections.' }),
  mqttPassword: optionalSetting({ name: 'NOTIFICATIONS_MQTT_PASSWORD', default: 'a dev token signed with JWT_SECRET', meaning: "MQTT password: the service's token (JWT) for the local broker." }),
  publishesPerSecond: intSetting({ name: 'NOTIFICATIONS_PUBLISHES_PER_SECOND', default: 100, min: 1, meaning: 'Publishes per second per connection (IoT Core allows 100).' }),
  serviceUserId: stringSetting({ name: 'NOTIFICATIONS_SERVICE_USER', default: 'service:notifications', meaning: "The token subject of the service's MQTT connections." }),
  port: intSetting({ name: 'NOTIFICATIONS_PORT', default: 0, min: 0, max: 65535, meaning: 'Port of the inbox API; 0 picks a free one.' }),
  ...METRICS_SETTINGS,
  maxPage: intSetting({ name: 'NOTIFICATIONS_MAX_PAGE', default: 50, min: 1, max: 500, meaning: "Upper bound of a list's `limit`, and its default." }),
  // The replay API's defaults: a board polls the unread count and lists a page now and then.
  ratePerUser: intSetting({ name: 'NOTIFICATIONS_RATE_PER_USER', default: 20, min: 1, meaning: 'Inbox API requests per second one user may make (token bucket; 429 beyond it).' }),
  burstPerUser: intSetting({ name: 'NOTIFICATIONS_BURST_PER_USER', default: 100, min: 1, meaning: 'Inbox API requests one user may make at once before the rate applies.' }),
  concurrencyPerUser: intSetting({ name: 'NOTIFICATIONS_CONCURRENCY_PER_USER', default: 50, min: 1, meaning: 'Inbox API requests of one user in flight at a time.' }),
};

/** What `taskflow notifications --help` and notifications/README.md list: every variable the service reads. */
export const NOTIFICATION_SETTING_LIST = uniqueSettings(NOTIFICATION_SETTINGS, CONSUMER_SETTINGS, AWS_SETTINGS, JWT_SETTINGS, SUBJECT_KEY_SETTINGS, DEV_MODE_SETTINGS, LOG_SETTINGS);

export function loadConfig(env: Env): NotificationsConfig {
  const s = readSettings(env, NOTIFICATION_SETTINGS);
  return {
    aws: loadAwsConfig(env),
    consumer: loadConsumerConfig(env),
    consumerName: s.consumerName,
    tables: { dlq: s.dlqTable, inbox: s.inboxTable, watchers: s.watchersTable, memberships: s.membershipsTable },
    publisher: s.publisher,
    ...brokerTier(s.brokers, s.publisher),
    mqtt: { url: s.mqttUrl, poolSize: s.mqttConnections, username: s.mqttUsername, ...(s.mqttPassword ? { password: s.mqttPassword } : {}), publishesPerSecond: s.publishesPerSecond },
    serviceUserId: s.serviceUserId,
    jwt: loadJwtConfig(env),
    port: s.port,
    metricsPort: s.metricsPort,
    metricsHost: s.metricsHost,
    maxPage: s.maxPage,
    limits: { ratePerSec: s.ratePerUser, burst: s.burstPerUser, maxConcurrent: s.concurrencyPerUser, maxUsers: 100_000 },
    ...readerKeyConfig(env),
  };
}

function brokerTier(list: string | undefined, publisher: string): { brokers?: BrokerNode[] } {
  if (list === undefined) return {};
  if (publisher !== 'mqtt') throw new ConfigError('NOTIFICATIONS_BROKERS', 'needs NOTIFICATIONS_PUBLISHER=mqtt');
  try {
    const brokers = list.split(',').map((u) => u.trim()).filter((u) => u !== '').map(brokerNode);
    if (brokers.length === 0) throw new Error('no node');
    return { brokers };
  } catch (err) {
    throw new ConfigError('NOTIFICATIONS_BROKERS', `comma-separated ws://host:port list: ${(err as Error).message}`);
  }
}
