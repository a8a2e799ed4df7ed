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

describe('router reader settings', () => {
  it('polls by default and reads by enhanced fan-out only with a registered consumer', () => {
    expect(loadConfig(base).fanOut).toBeUndefined();
    expect(loadConfig({ ...base, ROUTER_READER: 'fanout', ROUTER_FANOUT_CONSUMER_ARN: 'arn:aws:kinesis:us-east-1:1:stream/s/consumer/router:1' }).fanOut).toEqual({ consumerArn: 'arn:aws:kinesis:us-east-1:1:stream/s/consumer/router:1' });
    expect(loadConfig({ ...base, ROUTER_READER: 'fanout', ROUTER_FANOUT_CONSUMER_ARN: 'arn:c', ROUTER_FANOUT_ENDPOINT: 'http://127.0.0.1:1' }).fanOut).toEqual({ consumerArn: 'arn:c', endpoint: 'http://127.0.0.1:1' });
    expect(() => loadConfig({ ...base, ROUTER_READER: 'fanout' })).toThrow(/ROUTER_FANOUT_CONSUMER_ARN: is required with ROUTER_READER=fanout/);
    expect(() => loadConfig({ ...base, ROUTER_READER: 'push' })).toThrow(/ROUTER_READER/);
    // The consumers' KINESIS_* reader settings are theirs, not the router's.
    expect(loadConfig({ ...base, KINESIS_READER: 'fanout' }).fanOut).toBeUndefined();
  });
});
