import { describe, expect, it } from '@jest/globals';
import { loadConfig } from './config.js';

const env = { JWT_SECRET: 'dev-secret-dev-secret-dev-secret-0123' };

describe('NOTIFICATIONS_BROKERS', () => {
  it('unset: one broker at MQTT_URL', () => {
    expect(loadConfig(env).brokers).toBeUndefined();
  });

  it('the tier nodes, parsed as the router parses ROUTER_BROKERS', () => {
    const config = loadConfig({ ...env, NOTIFICATIONS_BROKERS: 'ws://broker-0.broker:8080, ws://broker-1.broker:8080' });
    expect(config.brokers).toEqual([
      { id: 'broker-0.broker:8080', mqttUrl: 'ws://broker-0.broker:8080', httpUrl: 'http://broker-0.broker:8080' },
      { id: 'broker-1.broker:8080', mqttUrl: 'ws://broker-1.broker:8080', httpUrl: 'http://broker-1.broker:8080' },
    ]);
  });

  it('refuses a node that is not ws(s)://, an empty list, and the iot-data publisher', () => {
    expect(() => loadConfig({ ...env, NOTIFICATIONS_BROKERS: 'mqtt://broker-0:1883' })).toThrow(/NOTIFICATIONS_BROKERS/);
    expect(() => loadConfig({ ...env, NOTIFICATIONS_BROKERS: ' , ' })).toThrow(/NOTIFICATIONS_BROKERS/);
    expect(() => loadConfig({ ...env, NOTIFICATIONS_BROKERS: 'ws://broker-0:8080', NOTIFICATIONS_PUBLISHER: 'iot-data' })).toThrow(/NOTIFICATIONS_PUBLISHER=mqtt/);
  });
});
