// A broker that refuses subscriptions, as IoT Core does when it throttles SUBSCRIBE requests: the
// SDK must not take a failure SUBACK for "forbidden". It asks the replay API; where access stands
// it subscribes again (with backoff) and goes live; where the replay API answers 403 the
// subscription ends with `forbidden`.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createClient, type RealtimeClient, type RealtimeError, type Status } from '@taskflow/realtime';
import { ProjectFeed } from '../../clients/web-sdk/test/project-feed.js';
import type { Broker } from '../../infra/local/broker.js';
import { waitFor } from '../support/wait.js';
import { startTestBroker } from '../support/stack.js';

const WS = randomUUID();
const GRANTED = randomUUID();
const FORBIDDEN = randomUUID();
/** Failure SUBACKs per topic before the broker lets a SUBSCRIBE through. */
const REFUSALS = 2;

let broker: Broker;
let feed: ProjectFeed;
const attempts = new Map<string, number>();
const clients: RealtimeClient[] = [];

beforeAll(async () => {
  broker = await startTestBroker({
    authorizeSubscribe(_client, subscription, done) {
      const n = (attempts.get(subscription.topic) ?? 0) + 1;
      attempts.set(subscription.topic, n);
      done(null, n <= REFUSALS ? null : subscription); // null: failure SUBACK (0x80)
    },
  });
  // The replay API as the contract describes it; 403 for the forbidden project.
  feed = await new ProjectFeed({ publishUrl: broker.publishUrl }).start();
  feed.forbidden.add(FORBIDDEN);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await feed?.close();
  await broker?.stop();
});

describe('web SDK and a broker that refuses subscriptions', () => {
  it('subscribes again where the replay API grants access, and ends with forbidden where it does not', async () => {
    const client = createClient({ url: broker.wsUrl, token: 'dev-token', replayUrl: feed.replayUrl, backoff: { baseMs: 50, maxMs: 200 }, subscription: { retry: { baseMs: 50, maxMs: 200 } } });
    clients.push(client);
    const statuses: Record<string, Status[]> = { [GRANTED]: [], [FORBIDDEN]: [] };
    const errors: Record<string, RealtimeError[]> = { [GRANTED]: [], [FORBIDDEN]: [] };
    for (const project of [GRANTED, FORBIDDEN]) {
      client.subscribeProject(WS, project, {
        fromSeq: 1,
        onChange: () => {},
        onResync: () => {},
        onStatus: (s) => statuses[project]!.push(s),
        onError: (e) => errors[project]!.push(e),
      });
    }
    await waitFor(() => statuses[GRANTED]!.at(-1) === 'live', () => `the granted project live: ${statuses[GRANTED]!.join('>')}`, 10_000);
    await waitFor(() => errors[FORBIDDEN]!.length > 0, () => 'the forbidden project to fail', 10_000);

    expect(attempts.get(`taskflow/v1/ws/${WS}/projects/${GRANTED}`)).toBe(REFUSALS + 1);
    expect(errors[GRANTED]).toEqual([]);
    expect(errors[FORBIDDEN]!.map((e) => e.code)).toEqual(['forbidden']);
    expect(statuses[FORBIDDEN]!.at(-1)).toBe('offline');
    // Ended at the first refusal: no further SUBSCRIBE for the forbidden topic.
    expect(attempts.get(`taskflow/v1/ws/${WS}/projects/${FORBIDDEN}`)).toBe(1);
  });
});
