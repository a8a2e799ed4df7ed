// Reads the prices file, a scale file and the measured figures the model takes from the
// benchmarks' results (test/bench/results/*.json), so a new bench run moves the bill.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TaskflowError } from '../../../lib/errors.js';
import { alarms } from '../../alarms.js';
import { customMetricCount, shippedMetrics } from '../metrics-shipping.js';
import type { Measured, Scale } from './model.js';
import type { Prices } from './prices.js';

const here = dirname(fileURLToPath(import.meta.url));
const resultsDir = join(here, '../../../test/bench/results');

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new TaskflowError('COST_INPUT', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function num(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new TaskflowError('COST_INPUT', `${what} is not a positive number (${String(value)})`);
  return value;
}

export function loadPrices(path = join(here, 'prices.json')): Prices {
  return readJson(path) as Prices;
}

interface RouterResult { metrics: { core_events_per_s: number; mqtt_messages_per_event: number }; params: { costRuns: Record<string, { bytesPerChange: number }> } }
interface CaptureResult { params: { backlog_transactions: number; drain_capture_cpu_seconds: number } }
interface E2eResult { params: { changesPerTransaction: number }; metrics: { cpu_us_per_change_router: number } }
type ConsumersResult = { metrics: Record<string, number> };
interface BrokerResult { metrics: { connections: number; idle_rss_mib: number; rss_kib_per_connection: number; cpu_us_per_delivery_gross_max: number } }

export function loadMeasured(dir = resultsDir): Measured {
  const router = readJson(join(dir, 'router.json')) as RouterResult;
  const capture = readJson(join(dir, 'capture.json')) as CaptureResult;
  const e2e = readJson(join(dir, 'e2e.json')) as E2eResult;
  const broker = readJson(join(dir, 'broker.json')) as BrokerResult;
  const consumers = readJson(join(dir, 'consumers.json')) as ConsumersResult;
  const runs = router.params.costRuns;
  return {
    // The drain's one-row transactions are one event each.
    captureCpuUsPerEvent: (num(capture.params.drain_capture_cpu_seconds, 'capture.json drain_capture_cpu_seconds') * 1e6) / num(capture.params.backlog_transactions, 'capture.json backlog_transactions'),
    routerCoreCpuUsPerEvent: 1e6 / num(router.metrics.core_events_per_s, 'router.json core_events_per_s'),
    changesPerTransaction: num(e2e.params.changesPerTransaction, 'e2e.json changesPerTransaction'),
    pipelineCpuUsPerChange: {
      router: num(e2e.metrics.cpu_us_per_change_router, 'e2e.json cpu_us_per_change_router'),
      ...Object.fromEntries(['search', 'notifications', 'audit', 'archiver'].map((c) => [c, num(consumers.metrics[`contended_cpu_us_per_change_${c}`], `consumers.json contended_cpu_us_per_change_${c}`)])),
    },
    fullBytesPerChange: num(runs.window100_full?.bytesPerChange, 'router.json window100_full'),
    thinBytesPerChange: num(runs.window100_thin?.bytesPerChange, 'router.json window100_thin'),
    thinGzipBytesPerChange: num(runs.window100_thin_gzip?.bytesPerChange, 'router.json window100_thin_gzip'),
    benchMessagesPerChange: num(router.metrics.mqtt_messages_per_event, 'router.json mqtt_messages_per_event'),
    broker: {
      connectionsPerNode: num(broker.metrics.connections, 'broker.json connections'),
      idleRssMib: num(broker.metrics.idle_rss_mib, 'broker.json idle_rss_mib'),
      kibPerConnection: num(broker.metrics.rss_kib_per_connection, 'broker.json rss_kib_per_connection'),
      cpuUsPerDelivery: num(broker.metrics.cpu_us_per_delivery_gross_max, 'broker.json cpu_us_per_delivery_gross_max'),
    },
  };
}

/**
 * What the deployment creates in CloudWatch: one alarm per entry of the alarm catalog, and the
 * custom metrics the agent ships for them (metrics-shipping.ts: each alarmed service metric once
 * per value of its dimensions). The names do not change the counts; the broker does (the
 * self-hosted tier's authorizer metrics are shipped, IoT Core's are AWS/Lambda's): the default,
 * as infra/aws/settings.ts deploys it.
 */
export function cloudWatchCounts(broker: 'self-hosted' | 'iot-core' = 'self-hosted'): { alarms: number; custom_metrics: number } {
  const catalog = alarms({ streamName: 'taskflow-changes', authorizerFunctionName: 'taskflow-iot-authorizer', broker });
  return { alarms: catalog.length, custom_metrics: customMetricCount(shippedMetrics(catalog)) };
}

/** `seed` or a path to a scale file of the same shape (measured figures are always added; alarms and custom metrics are the deployment's unless the file states them). */
export function loadScale(nameOrPath = 'seed'): Scale {
  const path = nameOrPath === 'seed' ? join(here, 'seed-scale.json') : resolve(nameOrPath);
  const raw = readJson(path) as Omit<Scale, 'measured' | 'observability'> & { observability: Omit<Scale['observability'], 'alarms' | 'custom_metrics'> & Partial<Scale['observability']> };
  const shares = raw.fan_out?.classes?.reduce((a, c) => a + c.share, 0);
  if (shares === undefined || Math.abs(shares - 1) > 1e-6) throw new TaskflowError('COST_INPUT', `${path}: fan_out.classes shares must add up to 1 (they add up to ${shares})`);
  num(raw.events?.peak_per_s, `${path}: events.peak_per_s`);
  num(raw.events?.average_per_s, `${path}: events.average_per_s`);
  return { ...raw, observability: { ...cloudWatchCounts(), ...raw.observability }, measured: loadMeasured() };
}
