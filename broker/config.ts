// The broker node's configuration, read once from the environment (fails fast naming the bad
// variable). BROKER_SETTINGS declares each variable once: loadConfig, `taskflow broker --help`
// and the reference in broker/README.md all come from it (lib/config.ts).
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { AWS_SETTINGS, type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import { DEFAULT_ROUTER_SERVICE_USER } from '../lib/authz.js';
import { type Env, customSetting, intSetting, optionalSetting, readSettings, str, stringSetting, tableEnvVar, uniqueSettings } from '../lib/config.js';
import { DEV_MODE_SETTINGS } from '../lib/dev-mode.js';
import { ConfigError } from '../lib/errors.js';
import { JWT_SETTINGS, type JwtConfig, loadJwtConfig } from '../lib/jwt.js';
import { LOG_SETTINGS } from '../lib/logger.js';
import { METRICS_SETTINGS } from '../lib/metrics.js';
import { DEFAULT_CONNECT_LIMITS, DEFAULT_RECHECK_MS } from '../infra/local/broker-auth.js';

export interface BrokerConfig {
  aws: AwsConfig;
  /** aedes' id: `$SYS/<id>/…` and every lifecycle event's `brokerId`. */
  brokerId: string;
  host: string;
  tcpPort: number;
  wsPort: number;
  membershipsTable: string;
  /** The token subject the HTTP routes answer (the router); GET /subscriptions also answers the other serviceUserIds. */
  routerServiceUser: string;
  /** Token subjects that may publish and subscribe anywhere: the router and these. */
  serviceUserIds: string[];
  recheckMs: number;
  connectLimits: { ratePerSec: number; burst: number };
  drainMs: number;
  jwt: JwtConfig;
  metricsPort: number;
  metricsHost: string;
}

export const BROKER_SETTINGS = {
  brokerId: optionalSetting({ name: 'BROKER_ID', default: '<hostname>', meaning: "This node's identity (a StatefulSet pod's name): aedes' id, so `$SYS/<id>/…`, and the `brokerId` of every lifecycle event and of GET /subscriptions." }),
  // A network service: in a pod the NLB reaches the pod's IP.
  host: customSetting({
    name: 'BROKER_HOST',
    type: 'IP address',
    default: '0.0.0.0',
    meaning: 'Address the MQTT (TCP) and WebSocket/HTTP listeners bind; 127.0.0.1 keeps a laptop\'s broker to itself.',
    read(env) {
      const v = str(env, 'BROKER_HOST', '0.0.0.0');
      if (isIP(v) === 0) throw new ConfigError('BROKER_HOST', `must be an IP address (0.0.0.0 for every interface), got "${v}"`);
      return v;
    },
  }),
  tcpPort: intSetting({ name: 'BROKER_TCP_PORT', default: 1883, min: 0, max: 65535, meaning: 'Port of MQTT over TCP; 0 picks a free one.' }),
  wsPort: intSetting({ name: 'BROKER_WS_PORT', default: 8080, min: 0, max: 65535, meaning: 'Port of MQTT over WebSocket (/mqtt) and of the HTTP routes (POST /topics/{topic}, DELETE /connections/{clientId}, GET /subscriptions); 0 picks a free one.' }),
  membershipsTable: stringSetting({ name: tableEnvVar('memberships'), default: 'taskflow-memberships', meaning: "The router's membership projection, which subscriptions are authorized against." }),
  routerServiceUser: stringSetting({ name: 'ROUTER_SERVICE_USER', default: DEFAULT_ROUTER_SERVICE_USER, meaning: "The router's token subject: the only one POST /topics and DELETE /connections answer, and a publisher." }),
  publisherUserIds: customSetting({
    name: 'BROKER_PUBLISHER_USER_IDS',
    type: 'comma-separated user ids',
    default: 'service:notifications',
    meaning: 'Token subjects besides ROUTER_SERVICE_USER that may publish and subscribe anywhere (the notifications service); empty for none.',
    read(env) {
      const raw = env.BROKER_PUBLISHER_USER_IDS ?? 'service:notifications';
      return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
    },
  }),
  // A safety net behind the router's own revocation (infra/local/broker-auth.ts says what it
  // covers); its reads and CPU are in the bill (`npx taskflow cost`, mqtt_self_hosted recheck_*). Token expiry
  // is checked every second without a read, whatever this is.
  recheckMs: intSetting({
    name: 'BROKER_RECHECK_MS',
    default: DEFAULT_RECHECK_MS,
    min: 1000,
    max: 3_600_000,
    meaning: "Each connection's live subscriptions are read again against its memberships once per this interval, each connection at its own phase (a revoked user is disconnected): the bound for a revocation the router could not carry out. 2 DynamoDB reads a connection each interval.",
  }),
  connectRatePerUser: intSetting({ name: 'BROKER_CONNECT_RATE_PER_USER', default: DEFAULT_CONNECT_LIMITS.ratePerSec, min: 1, meaning: 'Connects per second one user may make after the burst (CONNACK 3 beyond, which the SDK retries with backoff).' }),
  connectBurstPerUser: intSetting({ name: 'BROKER_CONNECT_BURST_PER_USER', default: DEFAULT_CONNECT_LIMITS.burst, min: 1, meaning: 'Connects one user may make at once before the rate applies (ten tabs reconnecting after a drain pass).' }),
  // Well inside the pod's termination grace period (30 s by default).
  drainMs: intSetting({ name: 'BROKER_DRAIN_MS', default: 10_000, min: 0, max: 120_000, meaning: 'On SIGTERM: new connections are refused at once and the connected clients closed evenly over this long, so they reconnect to the other nodes in a stream, not at once.' }),
  ...METRICS_SETTINGS,
};

/** What `taskflow broker --help` and broker/README.md list: every variable the broker reads. */
export const BROKER_SETTING_LIST = uniqueSettings(BROKER_SETTINGS, AWS_SETTINGS, JWT_SETTINGS, DEV_MODE_SETTINGS, LOG_SETTINGS);

export function loadConfig(env: Env): BrokerConfig {
  const s = readSettings(env, BROKER_SETTINGS);
  return {
    aws: loadAwsConfig(env),
    brokerId: s.brokerId ?? hostname(),
    host: s.host,
    tcpPort: s.tcpPort,
    wsPort: s.wsPort,
    membershipsTable: s.membershipsTable,
    routerServiceUser: s.routerServiceUser,
    serviceUserIds: [...new Set([s.routerServiceUser, ...s.publisherUserIds])],
    recheckMs: s.recheckMs,
    connectLimits: { ratePerSec: s.connectRatePerUser, burst: s.connectBurstPerUser },
    drainMs: s.drainMs,
    jwt: loadJwtConfig(env),
    metricsPort: s.metricsPort,
    metricsHost: s.metricsHost,
  };
}
