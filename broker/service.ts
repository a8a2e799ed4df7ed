// One production broker node (`taskflow broker`): the MQTT broker of infra/local/broker.ts — the
// same code as the local stand-in — with the membership authorization of broker-auth.ts, its HTTP
// routes reserved for the router's token, and its metrics and probes. Nodes share nothing: each
// browser connection lives on one node (behind the NLB), and the router publishes to every node
// and reads each node's live subscriptions from its GET /subscriptions.
import { createDynamoClient } from '../lib/aws.js';
import { prometheusAuthorizerMetrics } from '../lib/authorizer-metrics.js';
import { DynamoMembershipProjection } from '../lib/dynamo-memberships.js';
import { createVerifier } from '../lib/jwt.js';
import type { Logger } from '../lib/logger.js';
import { createRegistry, serveMetrics } from '../lib/metrics.js';
import { type Broker, startBroker } from '../infra/local/broker.js';
import { createBrokerAuth } from '../infra/local/broker-auth.js';
import type { BrokerConfig } from './config.js';

export interface BrokerService {
  broker: Broker;
  metricsUrl: string;
  /** Refuses new connections, closes the clients over BROKER_DRAIN_MS, stops; readiness fails from the start. */
  drain(): Promise<void>;
}

export async function startBrokerService(config: BrokerConfig, logger: Logger): Promise<BrokerService> {
  const registry = createRegistry('broker');
  const verify = createVerifier(config.jwt);
  const dynamo = createDynamoClient(config.aws);
  const projection = new DynamoMembershipProjection(dynamo, config.membershipsTable);
  const auth = createBrokerAuth({
    verify,
    memberships: (userId) => projection.memberships(userId),
    // Half the read units (every connection, every BROKER_RECHECK_MS): the re-check bounds a
    // revocation the router could not carry out, and a read a second stale is caught an interval later.
    recheckMemberships: (userId) => projection.memberships(userId, { consistent: false }),
    serviceUserIds: config.serviceUserIds,
    recheckMs: config.recheckMs,
    connectLimits: config.connectLimits,
    registry,
    metrics: prometheusAuthorizerMetrics(registry),
    logger,
  });
  const broker = await startBroker({
    id: config.brokerId,
    host: config.host,
    tcpPort: config.tcpPort,
    wsPort: config.wsPort,
    hooks: auth.hooks,
    // The router's routes; GET /subscriptions also for the other publishers (notifications' broker tier loads it).
    routeAuth: { verify, subject: config.routerServiceUser, readers: config.serviceUserIds.filter((u) => u !== config.routerServiceUser) },
    registry,
  });
  let draining = false;
  const { server, url } = await serveMetrics(registry, { port: config.metricsPort, host: config.metricsHost }, {
    live: () => ({ ok: true }),
    // Draining: out of the NLB's targets, so reconnecting clients go to the other nodes.
    ready: () => ({ ok: broker.running && !draining, brokerId: broker.id, draining }),
  });
  logger.info({ brokerId: broker.id, tcpUrl: broker.tcpUrl, wsUrl: broker.wsUrl, httpUrl: broker.publishUrl, metricsUrl: url }, 'broker started');
  return {
    broker,
    metricsUrl: url,
    async drain() {
      draining = true;
      const clients = broker.sessions().length;
      logger.info({ clients, drainMs: config.drainMs }, 'draining: refusing new connections, closing clients');
      await broker.drain(config.drainMs);
      auth.stop();
      dynamo.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      logger.info({ clients }, 'drained');
    },
  };
}
