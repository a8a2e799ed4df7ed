// Prometheus metrics: each service owns one Registry and declares its metric names once,
// then exposes it over HTTP at /metrics, beside the kubelet's probes /healthz and /readyz.
import { type Server, type ServerResponse, createServer } from 'node:http';
import { isIP } from 'node:net';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { awsRequestCounts } from './aws.js';
import { customSetting, intSetting, str } from './config.js';
import { ConfigError } from './errors.js';

export function createRegistry(service: string, withDefaults = true): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (withDefaults) {
    collectDefaultMetrics({ register: registry });
    registerAwsRequests(registry);
  }
  return registry;
}

export const AWS_REQUESTS_METRIC = 'taskflow_aws_requests_total';

/** The process's AWS API calls (lib/aws.ts counts them), read at each scrape. */
function registerAwsRequests(registry: Registry): void {
  new Counter({
    name: AWS_REQUESTS_METRIC,
    help: 'AWS API calls made by this process, by API and command',
    labelNames: ['api', 'command'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { api, command, count } of awsRequestCounts()) this.inc({ api, command }, count);
    },
  });
}

/** Where a service serves /metrics, /healthz and /readyz. */
export interface MetricsEndpoint {
  port: number;
  host: string;
}

// Loopback by default: on a laptop nothing else should read the metrics. In a pod the kubelet
// (probes) and Prometheus reach the pod's IP, so the EKS manifests set 0.0.0.0.
export const METRICS_SETTINGS = {
  metricsPort: intSetting({ name: 'METRICS_PORT', default: 0, min: 0, max: 65535, meaning: 'Port of /metrics (Prometheus), /healthz and /readyz; 0 picks a free one.' }),
  metricsHost: customSetting({
    name: 'METRICS_HOST',
    type: 'IP address',
    default: '127.0.0.1',
    meaning: 'Address /metrics, /healthz and /readyz listen on; 0.0.0.0 in a pod, so the kubelet and Prometheus reach them.',
    read(env) {
      const v = str(env, 'METRICS_HOST', '127.0.0.1');
      if (isIP(v) === 0) throw new ConfigError('METRICS_HOST', `must be an IP address (0.0.0.0 for every interface), got "${v}"`);
      return v;
    },
  }),
};

/** The result of a probe; anything besides `ok` is shown in the JSON body to whoever looks. */
export interface ProbeResult {
  ok: boolean;
  [detail: string]: unknown;
}

/**
 * live: false only when the process is wedged and a restart would help (the kubelet restarts it).
 * ready: false while the service cannot do its job yet or now (leases unreachable, no slot...):
 * the pod leaves its Service and a rolling update waits for it.
 */
export interface HealthChecks {
  live(): ProbeResult;
  ready(): ProbeResult;
}

/** The probes of a service whose work is a Kinesis consumer (packages/stream consumerHealth). */
export function consumerProbes(consumer: { health(): { live: boolean; ready: boolean } }): HealthChecks {
  return {
    live: () => {
      const h = consumer.health();
      return { ...h, ok: h.live };
    },
    ready: () => {
      const h = consumer.health();
      return { ...h, ok: h.ready };
    },
  };
}

/** An answering process is alive; used where a service has nothing more telling to check. */
const ANSWERING: HealthChecks = { live: () => ({ ok: true }), ready: () => ({ ok: true }) };

/** Serves GET /metrics, /healthz (live) and /readyz (ready); resolves once listening. */
export async function serveMetrics(registry: Registry, endpoint: MetricsEndpoint, health: HealthChecks = ANSWERING): Promise<{ server: Server; url: string }> {
  const probe = (check: () => ProbeResult, res: ServerResponse) => {
    let result: ProbeResult;
    try {
      result = check();
    } catch (err) {
      result = { ok: false, error: String(err) };
    }
    res.writeHead(result.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(result));
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') return probe(() => health.live(), res);
    if (path === '/readyz') return probe(() => health.ready(), res);
    if (path !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve) => server.listen(endpoint.port, endpoint.host, resolve));
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : endpoint.port;
  const shownHost = endpoint.host === '0.0.0.0' ? '127.0.0.1' : endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  return { server, url: `http://${shownHost}:${actualPort}/metrics` };
}
