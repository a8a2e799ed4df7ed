import { describe, expect, it } from '@jest/globals';
import { demoSessions } from './server.js';

const options = {
  users: { alice: 'u-alice', bob: 'u-bob' },
  workspaceId: 'ws',
  projectId: 'p',
  mqttUrl: 'ws://127.0.0.1:1/mqtt',
  replayUrl: 'http://127.0.0.1:2/',
  sign: async (userId: string) => `token-of-${userId}`,
};

describe('demo board sessions (/api/session)', () => {
  it('do not exist outside development mode, and say why', () => {
    for (const env of [{}, { TASKFLOW_ENV: 'production' }]) {
      expect(() => demoSessions({ ...options, env })).toThrow(/\/api\/session .*exists only in development mode \(TASKFLOW_ENV=development/);
    }
  });

  it('in development mode hand out a demo user’s token', async () => {
    const session = demoSessions({ ...options, env: { TASKFLOW_ENV: 'development' } });
    await expect(session('bob')).resolves.toMatchObject({ userId: 'u-bob', token: 'token-of-u-bob', replayUrl: 'http://127.0.0.1:2' });
    await expect(session(undefined)).resolves.toMatchObject({ userId: 'u-alice' });
    await expect(session('bob')).resolves.not.toHaveProperty('notificationsUrl');
  });

  it('hand the page the inbox API when the notifications service runs (the bell)', async () => {
    const session = demoSessions({ ...options, notificationsUrl: 'http://127.0.0.1:3/', env: { TASKFLOW_ENV: 'development' } });
    await expect(session('alice')).resolves.toMatchObject({ notificationsUrl: 'http://127.0.0.1:3' });
  });
});
