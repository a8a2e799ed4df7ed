// Default ports of `taskflow dev`, in one place. All sit away from the standard ports of the
// system services they stand in for (5432, 4567, 8000, 1883, 8083 …), so a developer's own
// Postgres or Mosquitto never collides with the project's engines. Tests use ephemeral ports.
export interface StackPorts {
  postgres: number;
  kinesis: number;
  dynamodb: number;
  mqttTcp: number;
  /** MQTT over WebSocket, plus the IoT data-plane publish route (POST /topics/{topic}). */
  mqttWs: number;
  /** The Firehose stand-in (infra/local/firehose). */
  firehose: number;
  /** The enhanced fan-out stand-in (infra/local/fanout.ts): SubscribeToShard over HTTP/2. */
  fanout: number;
}

export const DEV_PORTS: StackPorts = {
  postgres: 54329,
  kinesis: 45671,
  dynamodb: 45672,
  mqttTcp: 18830,
  mqttWs: 18831,
  firehose: 45673,
  fanout: 45674,
};

/** Every engine on a free port chosen by the OS (0); Postgres gets a concrete free one at start. */
export const EPHEMERAL_PORTS: StackPorts = { postgres: 0, kinesis: 0, dynamodb: 0, mqttTcp: 0, mqttWs: 0, firehose: 0, fanout: 0 };

/**
 * HTTP endpoints of the services `taskflow dev` runs (cli/commands/dev.ts says which service
 * serves which), listed in StackInfo.http and passed to every service as <ENDPOINT>_URL.
 */
export const DEV_HTTP_PORTS = {
  board: 18088,
  replay: 18089,
  'capture-metrics': 18090,
  'router-metrics': 18091,
  search: 18092,
  'search-metrics': 18093,
  'archiver-metrics': 18094,
  'loader-metrics': 18095,
  'audit-metrics': 18096,
  notifications: 18097,
  'notifications-metrics': 18098,
  /** The local authorizer's (broker hooks') metrics, served by taskflow dev itself. */
  'broker-metrics': 18099,
  'gdpr-metrics': 18100,
  /** The read-only analytics API (served by the loader) the board's /analytics page reads. */
  analytics: 18101,
  /** The loader's internal erasure endpoint, which only the gdpr processor calls (analytics/erasure-api.ts). */
  'warehouse-erasure': 18102,
} as const;
