// The client against a real broker (aedes over WebSocket, in-process on ephemeral ports), with
// the contract-following test feed as publisher and replay API, and a cuttable TCP proxy.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { startBroker, type Broker } from '../../../infra/local/broker.js';
import { ProjectFeed } from '../test/project-feed.js';
import { TcpProxy } from '../test/tcp-proxy.js';
import { createClient, type ClientOptions, type RealtimeClient } from './client.js';
import { connectUrl } from './connection.js';
import type { RealtimeError } from './errors.js';
import type { Change, Status } from './types.js';
import { sleep, waitFor } from '../../../test/support/wait.js';

let broker: Broker;
let feed: ProjectFeed;
let proxy: TcpProxy;
const clients: RealtimeClient[] = [];
const ws = randomUUID();

beforeAll(async () => {
  broker = await startBroker({ tcpPort: 0, wsPort: 0 });
  feed = await new ProjectFeed({ publishUrl: broker.publishUrl, acceptToken: (t) => t !== 'expired' }).start();
  proxy = await new TcpProxy({ host: '127.0.0.1', port: Number(new URL(broker.wsUrl).port) }).start();
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

afterAll(async () => {
  await proxy.close();
  await feed.close();
  await broker.stop();
});

function client(extra: Partial<ClientOptions> = {}): RealtimeClient {
  const c = createClient({
    url: `ws://127.0.0.1:${proxy.port}/mqtt`,
    token: 'token',
    replayUrl: feed.replayUrl,
    backoff: { baseMs: 50, maxMs: 500 },
    subscription: { reorderWindowMs: 50 },
    ...extra,
  });
  clients.push(c);
  return c;
}

class Recorder {
  changes: Change[] = [];
  statuses: Status[] = [];
  resyncs: number[] = [];
  errors: RealtimeError[] = [];
  handlers(fromSeq?: number) {
    return {
      ...(fromSeq === undefined ? {} : { fromSeq }),
      onChange: (c: Change) => this.changes.push(c),
      onResync: (info: { latestSeq: number }) => this.resyncs.push(info.latestSeq),
      onStatus: (s: Status) => this.statuses.push(s),
      onError: (e: RealtimeError) => this.errors.push(e),
    };
  }
  get seqs(): number[] {
    return this.changes.map((c) => c.seq);
  }
  get status(): Status | undefined {
    return this.statuses[this.statuses.length - 1];
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('client against a real broker', () => {
  it('catches up from fromSeq through the replay API, then goes live with full, thin and gzipped batches', async () => {
    const project = randomUUID();
    await feed.commit(ws, project, 5, { publish: false });
    const r = new Recorder();
    client().subscribeProject(ws, project, r.handlers(3));
    await waitFor(() => r.status === 'live', 'live');
    expect(r.seqs).toEqual([3, 4, 5]);
    expect(r.statuses).toEqual(['connecting', 'recovering', 'live']);
    await feed.commit(ws, project, 2, { mode: 'full' });
    await feed.commit(ws, project, 2, { mode: 'thin', gzip: true });
    await feed.commit(ws, project, 1, { gzip: true });
    await waitFor(() => r.seqs.length === 8, '8 changes');
    expect(r.seqs).toEqual(range(3, 10));
    expect(r.changes.map((c) => c.mode)).toEqual(['full', 'full', 'full', 'full', 'full', 'thin', 'thin', 'full']);
    const thin = r.changes[5]!;
    expect(thin.mode === 'thin' && thin.id).toBe(feed.history(ws, project)[7]!.event.id);
  });

  // At the default QoS 0 a delivery lost on the way is never resent: the hole is fetched.
  it('drops resends and replay overlaps, and fetches a hole left by a lost message', async () => {
    const project = randomUUID();
    const r = new Recorder();
    client().subscribeProject(ws, project, r.handlers(1));
    await waitFor(() => r.status === 'live', 'live');
    const first = await feed.commit(ws, project, 3);
    await feed.publish(ws, project, first); // resend
    await feed.commit(ws, project, 2, { publish: false }); // lost on the way
    await feed.commit(ws, project, 1);
    await waitFor(() => r.seqs.length >= 6, '6 changes');
    // Asserting that nothing happens: a duplicate delivered late would show up within this time.
    await sleep(100);
    expect(r.seqs).toEqual(range(1, 6));
  });

  it('subscribes at QoS 0 by default (no PUBACK per delivery) and at 1 when asked', async () => {
    const granted: number[] = [];
    const qosBroker = await startBroker({ tcpPort: 0, wsPort: 0, hooks: { authorizeSubscribe: (_c, sub, done) => { granted.push(sub.qos); done(null, sub); } } });
    try {
      for (const subscribeQos of [undefined, 1 as const]) {
        const r = new Recorder();
        client({ url: qosBroker.wsUrl, ...(subscribeQos === undefined ? {} : { subscribeQos }) }).subscribeProject(ws, randomUUID(), r.handlers());
        await waitFor(() => r.status === 'live', 'live');
      }
      expect(granted).toEqual([0, 1]);
    } finally {
      for (const c of clients.splice(0)) c.close();
      await qosBroker.stop();
    }
  });

  it('reports an undecodable message as bad_message and still delivers the changes it held', async () => {
    const project = randomUUID();
    const r = new Recorder();
    client().subscribeProject(ws, project, r.handlers(1));
    await waitFor(() => r.status === 'live', 'live');
    await feed.commit(ws, project, 1);
    await feed.commit(ws, project, 2, { publish: false }); // what the garbled message carried
    const topic = `taskflow/v1/ws/${ws}/projects/${project}`;
    await fetch(`${broker.publishUrl}/topics/${encodeURIComponent(topic)}?qos=1`, { method: 'POST', body: '{"v":1,"changes":[' });
    await waitFor(() => r.errors.some((e) => e.code === 'bad_message'), 'the bad_message error');
    await feed.commit(ws, project, 1);
    await waitFor(() => r.seqs.length >= 4, '4 changes');
    expect(r.seqs).toEqual(range(1, 4));
    expect(r.errors.find((e) => e.code === 'bad_message')?.retriable).toBe(true);
  });

  it('recovers every change across repeated socket cuts while changes flow', async () => {
    const project = randomUUID();
    const r = new Recorder();
    const c = client();
    c.subscribeProject(ws, project, r.handlers(1));
    await waitFor(() => r.status === 'live', 'live');
    for (let round = 0; round < 4; round += 1) {
      await feed.commit(ws, project, 3);
      proxy.cut();
      await feed.commit(ws, project, 4); // published while the subscriber is cut off
      await waitFor(() => r.status === 'live' && r.seqs.length === (round + 1) * 7, `round ${round}`);
    }
    expect(r.seqs).toEqual(range(1, 28));
    expect(r.statuses.filter((s) => s === 'offline').length).toBeGreaterThanOrEqual(4);
  });

  it('recovers when the broker restarts', async () => {
    const project = randomUUID();
    const r = new Recorder();
    client().subscribeProject(ws, project, r.handlers(1));
    await waitFor(() => r.status === 'live', 'live');
    await feed.commit(ws, project, 2);
    await broker.stop();
    await feed.commit(ws, project, 3, { publish: false });
    await broker.start();
    await waitFor(() => r.status === 'live' && r.seqs.length === 5, 'caught up after restart');
    await feed.commit(ws, project, 1);
    await waitFor(() => r.seqs.length === 6, 'live again');
    expect(r.seqs).toEqual(range(1, 6));
  });

  it('keeps at most maxConcurrentReplays replay requests in flight when many subscriptions catch up at once, also after a reconnect', async () => {
    const projects = Array.from({ length: 20 }, () => randomUUID());
    for (const p of projects) await feed.commit(ws, p, 3, { publish: false });
    feed.replayDelayMs = 20;
    feed.replayPeakInFlight = 0;
    try {
      const recorders = projects.map(() => new Recorder());
      const c = client({ maxConcurrentReplays: 3 });
      projects.forEach((p, i) => c.subscribeProject(ws, p, recorders[i]!.handlers(1)));
      await waitFor(() => recorders.every((r) => r.status === 'live'), 'all live');
      for (const p of projects) await feed.commit(ws, p, 2, { publish: false });
      proxy.cut(); // every subscription asks again after its new SUBACK
      await waitFor(() => recorders.every((r) => r.status === 'live' && r.seqs.length === 5), 'all caught up after the cut');
      for (const r of recorders) expect(r.seqs).toEqual(range(1, 5));
      expect(feed.replayPeakInFlight).toBeLessThanOrEqual(3);
    } finally {
      feed.replayDelayMs = 0;
    }
  });

  it('calls onResync when the changelog no longer reaches back, and continues after latestSeq', async () => {
    const project = randomUUID();
    await feed.commit(ws, project, 10, { publish: false });
    feed.trim(ws, project, 6);
    const r = new Recorder();
    client().subscribeProject(ws, project, r.handlers(2));
    await waitFor(() => r.resyncs.length === 1 && r.status === 'live', 'resync');
    expect(r.resyncs).toEqual([10]);
    await feed.commit(ws, project, 1);
    await waitFor(() => r.seqs.length === 1, 'next change');
    expect(r.seqs).toEqual([11]);
  });

  it('stops a subscription the replay API forbids', async () => {
    const project = randomUUID();
    feed.forbidden.add(project);
    const r = new Recorder();
    client().subscribeProject(ws, project, r.handlers(1));
    await waitFor(() => r.errors.length === 1, 'error');
    expect(r.errors[0]!.code).toBe('forbidden');
    expect(r.status).toBe('offline');
  });

  it('gets a fresh token after the replay API rejects one', async () => {
    const project = randomUUID();
    await feed.commit(ws, project, 2, { publish: false });
    const tokens = ['expired', 'fresh'];
    const r = new Recorder();
    client({ token: undefined, getToken: () => tokens.shift() ?? 'fresh' }).subscribeProject(ws, project, r.handlers(1));
    await waitFor(() => r.seqs.length === 2, 'changes');
    expect(tokens).toEqual([]);
  });

  it('opens another connection when one is full, and closes it when it empties', async () => {
    const c = client({ maxSubscriptionsPerConnection: 2 });
    const recorders = [new Recorder(), new Recorder(), new Recorder()];
    const projects = recorders.map(() => randomUUID());
    const unsubscribes = recorders.map((r, i) => c.subscribeProject(ws, projects[i]!, r.handlers(1)));
    expect(c.connectionCount).toBe(2);
    await waitFor(() => recorders.every((r) => r.status === 'live'), 'all live');
    await Promise.all(projects.map((p) => feed.commit(ws, p, 1)));
    await waitFor(() => recorders.every((r) => r.seqs.length === 1), 'one change each');
    unsubscribes[2]!();
    expect(c.connectionCount).toBe(1);
  });

  it('logs only while debug is on', async () => {
    const lines: string[] = [];
    const c = client({ debug: (m) => lines.push(m) });
    c.setDebug(false);
    const r = new Recorder();
    c.subscribeProject(ws, randomUUID(), r.handlers());
    await waitFor(() => r.status === 'live', 'live');
    expect(lines).toEqual([]);
    c.setDebug((m) => lines.push(m));
    proxy.cut();
    await waitFor(() => lines.includes('connection phase'), 'a log line');
  });
});

describe('client against a broker that checks the token', () => {
  it('fetches a fresh token when the broker rejects the CONNECT, and reports a static one', async () => {
    const accepted: string[] = [];
    const strict = await startBroker({
      tcpPort: 0,
      wsPort: 0,
      hooks: {
        authenticate: (_client, _username, password, done) => {
          const token = password?.toString() ?? '';
          if (token.startsWith('good')) {
            accepted.push(token);
            done(null, true);
          } else {
            done(Object.assign(new Error('bad token'), { returnCode: 4 as const }), false);
          }
        },
      },
    });
    try {
      const issued = ['stale', 'good-1'];
      const r = new Recorder();
      client({ url: strict.wsUrl, token: undefined, getToken: () => issued.shift() ?? 'good-n' }).subscribeProject(ws, randomUUID(), r.handlers());
      await waitFor(() => r.status === 'live', 'live with a fresh token');
      expect(accepted[0]).toBe('good-1');

      const errors: RealtimeError[] = [];
      client({ url: strict.wsUrl, token: 'bad', onError: (e) => errors.push(e) });
      const r2 = new Recorder();
      clients[clients.length - 1]!.subscribeProject(ws, randomUUID(), r2.handlers());
      await waitFor(() => errors.length > 0, 'an error');
      expect(errors[0]!.code).toBe('unauthorized');
      expect(r2.status).not.toBe('live');
    } finally {
      for (const c of clients.splice(0)) c.close();
      await strict.stop();
    }
  });
});

describe('IoT Core URL', () => {
  it('carries the authorizer name and the token in the query string', () => {
    const url = connectUrl('wss://abc-ats.iot.eu-west-1.amazonaws.com/mqtt', { authorizerName: 'taskflow-jwt' }, 'a.b.c');
    expect(url).toBe('wss://abc-ats.iot.eu-west-1.amazonaws.com/mqtt?x-amz-customauthorizer-name=taskflow-jwt&token=a.b.c');
    expect(connectUrl('ws://localhost:1/mqtt', undefined, 't')).toBe('ws://localhost:1/mqtt');
  });
});
