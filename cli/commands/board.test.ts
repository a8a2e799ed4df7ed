import { describe, expect, it } from '@jest/globals';
import { loadConfig } from './board.js';

const base = { DATABASE_URL: 'postgres://x@127.0.0.1/db', MQTT_WS_URL: 'ws://127.0.0.1:1/mqtt', REPLAY_URL: 'http://127.0.0.1:2' };

describe('taskflow board settings', () => {
  it('NOTIFICATIONS_URL: unset means no bell; set, it must be a URL', () => {
    expect(loadConfig(base).notificationsUrl).toBeUndefined();
    expect(loadConfig({ ...base, NOTIFICATIONS_URL: 'http://127.0.0.1:3' }).notificationsUrl).toBe('http://127.0.0.1:3');
    expect(() => loadConfig({ ...base, NOTIFICATIONS_URL: 'not a url' })).toThrow(/NOTIFICATIONS_URL.*must be a URL/);
  });
});
