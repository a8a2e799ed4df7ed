import { afterEach, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import { networkInterfaces } from 'node:os';
import { consumerHealth } from '@taskflow/stream';
import { ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { createKinesisClient } from './aws.js';
import { AWS_REQUESTS_METRIC, METRICS_SETTINGS, createRegistry, serveMetrics, type ProbeResult } from './metrics.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function serve(host: string, health?: { live(): ProbeResult; ready(): ProbeResult }) {
  const served = await serveMetrics(createRegistry('test', false), { port: 0, host }, health);
  servers.push(served.server);
  return { ...served, base: served.url.replace(/\/metrics$/, '') };
}

/** A non-loopback IPv4 address of this machine: what a kubelet would probe. */
const podIp = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

describe('serveMetrics', () => {
  it('answers /healthz and /readyz from the service’s checks: 200 or 503, with the detail as JSON', async () => {
    let ready = false;
    const { base } = await serve('127.0.0.1', { live: () => ({ ok: true }), ready: () => ({ ok: ready, leasesHeld: ready ? 2 : 0 }) });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${base}/readyz`);
    expect([notReady.status, await notReady.json()]).toEqual([503, { ok: false, leasesHeld: 0 }]);
    ready = true;
    const nowReady = await fetch(`${base}/readyz`);
    expect([nowReady.status, await nowReady.json()]).toEqual([200, { ok: true, leasesHeld: 2 }]);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    expect((await fetch(`${base}/other`)).status).toBe(404);
  });

  it('answers 503 when a check throws, rather than failing the request', async () => {
    const { base } = await serve('127.0.0.1', {
      live: () => ({ ok: true }),
      ready: () => {
        throw new Error('boom');
      },
    });
    const r = await fetch(`${base}/readyz`);
    expect([r.status, await r.json()]).toEqual([503, { ok: false, error: 'Error: boom' }]);
  });

  (podIp ? it : it.skip)('is reachable on the pod’s address with METRICS_HOST=0.0.0.0, and only on loopback by default', async () => {
    const open = await serve(METRICS_SETTINGS.metricsHost.read({ METRICS_HOST: '0.0.0.0' }));
    const port = new URL(open.url).port;
    expect((await fetch(`http://${podIp}:${port}/healthz`)).status).toBe(200);
    const closed = await serve(METRICS_SETTINGS.metricsHost.read({}));
    await expect(fetch(`http://${podIp}:${new URL(closed.url).port}/healthz`)).rejects.toThrow();
  });
});

describe('METRICS_HOST', () => {
  it('defaults to loopback and takes an IP address only', () => {
    expect(METRICS_SETTINGS.metricsHost.read({})).toBe('127.0.0.1');
    expect(METRICS_SETTINGS.metricsHost.read({ METRICS_HOST: '::' })).toBe('::');
    expect(() => METRICS_SETTINGS.metricsHost.read({ METRICS_HOST: 'localhost:9400' })).toThrow(/^METRICS_HOST: must be an IP address/);
  });
});

describe('consumerHealth', () => {
  const base = { running: true, failoverMs: 1500, startedAt: 0, leasesHeld: 1 };
  it('is ready while the last good lease cycle is at most one failover time old', () => {
    expect(consumerHealth({ ...base, lastGoodCycleAt: 1000, lastCycleEndedAt: 1000 }, 2500).ready).toBe(true);
    expect(consumerHealth({ ...base, lastGoodCycleAt: 1000, lastCycleEndedAt: 2600 }, 2600).ready).toBe(false);
    expect(consumerHealth({ ...base, lastGoodCycleAt: undefined, lastCycleEndedAt: 100 }, 200).ready).toBe(false);
    expect(consumerHealth({ ...base, running: false, lastGoodCycleAt: 1000, lastCycleEndedAt: 1000 }, 1000).ready).toBe(false);
  });

  it('stays live while lease cycles end, failed or not, and is wedged only after a minute (or ten failover times) without one', () => {
    // DynamoDB down: cycles fail, the worker is not ready, but a restart would not help.
    expect(consumerHealth({ ...base, lastGoodCycleAt: 0, lastCycleEndedAt: 299_000 }, 300_000)).toMatchObject({ ready: false, live: true });
    expect(consumerHealth({ ...base, lastGoodCycleAt: 0, lastCycleEndedAt: 1000 }, 61_001).live).toBe(false);
    expect(consumerHealth({ ...base, failoverMs: 10_000, lastGoodCycleAt: 0, lastCycleEndedAt: 1000 }, 61_001).live).toBe(true);
    expect(consumerHealth({ ...base, running: false, lastGoodCycleAt: undefined, lastCycleEndedAt: undefined }, 1e9).live).toBe(true);
  });
});

describe('AWS requests metric', () => {
  it('counts every call of a client built by lib/aws.ts, failed ones too, by API and command', async () => {
    // Port 1 refuses at once: the call fails, but it was made (and would be billed).
    const kinesis = createKinesisClient({ region: 'us-east-1', kinesisEndpoint: 'http://127.0.0.1:1' });
    const registry = createRegistry('test');
    const count = async () => {
      const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === AWS_REQUESTS_METRIC);
      return metric?.values.find((v) => v.labels.api === 'kinesis' && v.labels.command === 'ListStreamsCommand')?.value ?? 0;
    };
    const before = await count();
    for (let i = 0; i < 3; i += 1) await expect(kinesis.send(new ListStreamsCommand({}))).rejects.toThrow();
    expect((await count()) - before).toBe(3);
    kinesis.destroy();
  });
});
