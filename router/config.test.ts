import { describe, expect, it } from '@jest/globals';
import { loadConfig } from './config.js';

const base = { CHANGE_STREAM_NAME: 'taskflow-changes', JWT_SECRET: 'router-config-test-secret-32-bytes!' };

describe('router mTLS settings', () => {
  it('takes the client certificate and key together, and the CA with them', () => {
    expect(loadConfig(base).mqtt.tls).toBeUndefined();
    expect(loadConfig({ ...base, ROUTER_MQTT_CERT_FILE: '/c.pem', ROUTER_MQTT_KEY_FILE: '/k.pem' }).mqtt.tls).toEqual({ certFile: '/c.pem', keyFile: '/k.pem' });
    expect(loadConfig({ ...base, ROUTER_MQTT_CERT_FILE: '/c.pem', ROUTER_MQTT_KEY_FILE: '/k.pem', ROUTER_MQTT_CA_FILE: '/ca.pem' }).mqtt.tls).toEqual({ caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' });
  });

  it('refuses half an identity, or a CA without one', () => {
    expect(() => loadConfig({ ...base, ROUTER_MQTT_CERT_FILE: '/c.pem' })).toThrow(/ROUTER_MQTT_CERT_FILE: goes with ROUTER_MQTT_KEY_FILE/);
    expect(() => loadConfig({ ...base, ROUTER_MQTT_KEY_FILE: '/k.pem' })).toThrow(/ROUTER_MQTT_CERT_FILE: goes with ROUTER_MQTT_KEY_FILE/);
    expect(() => loadConfig({ ...base, ROUTER_MQTT_CA_FILE: '/ca.pem' })).toThrow(/ROUTER_MQTT_CA_FILE: is for mTLS/);
  });
});
