import { describe, expect, it } from '@jest/globals';
import { alarms, SERVICE_NAMESPACE } from '../alarms.js';
import { customMetricCount, SHIPPED_DIMENSION_VALUES, shippedMetrics } from './metrics-shipping.js';

const catalog = alarms({ streamName: 'taskflow-changes', authorizerFunctionName: 'taskflow-iot-authorizer', broker: 'self-hosted' });

describe('CloudWatch custom metrics the agent ships', () => {
  it('counts one metric per shipped metric and combination of its dimension values', () => {
    // a: no dimensions -> 1; b by consumer (3 values) -> 3; c by consumer x outcome (3 x 2) -> 6
    const values = { b: { consumer: ['x', 'y', 'z'] }, c: { consumer: ['x', 'y', 'z'], outcome: ['ok', 'error'] } };
    expect(customMetricCount([{ name: 'a', dimensions: [] }, { name: 'b', dimensions: ['consumer'] }, { name: 'c', dimensions: ['consumer', 'outcome'] }], values)).toBe(10);
    expect(() => customMetricCount([{ name: 'd', dimensions: ['shard'] }], values)).toThrow(/dimension shard of d/);
  });

  it("the catalog's: 24 metrics without dimensions, iterator age for 5 stream readers, 10 search and 7 inbox API outcomes, 3 broker authorizer outcomes (with IoT Core: the Lambda's, not shipped, and no broker-nodes gauges)", () => {
    const shipped = shippedMetrics(catalog);
    expect(shipped.filter((m) => m.dimensions.length === 0)).toHaveLength(24);
    expect(SHIPPED_DIMENSION_VALUES.kinesis_consumer_millis_behind_latest!.consumer).toEqual(['router', 'search', 'notifications', 'audit', 'analytics-archiver']);
    expect(customMetricCount(shipped)).toBe(24 + 5 + 10 + 7 + 3);
    expect(customMetricCount(shippedMetrics(alarms({ streamName: 'taskflow-changes', authorizerFunctionName: 'taskflow-iot-authorizer', broker: 'iot-core' })))).toBe(21 + 5 + 10 + 7);
  });

  it('knows every dimension value an alarm reads', () => {
    for (const a of catalog) {
      if (a.cloudwatch.namespace !== SERVICE_NAMESPACE) continue;
      for (const [d, v] of Object.entries(a.cloudwatch.dimensions ?? {})) expect(SHIPPED_DIMENSION_VALUES[a.cloudwatch.metricName]?.[d]).toContain(v);
    }
  });
});
