// The web SDK against a real broker while changes flow, its connections are cut and the broker
// restarts. The server side is the router's own code — sequencing (planSequence), the changelog
// (MemoryChangelogStore), message encoding (encodeMessages: batches, full/thin, gzip) and the
// replay answer (replayAnswer) — driven in-process and publishing through the broker's IoT
// data-plane route, as the router service can. Being in-process, it can lose publishes and
// replay on purpose; sdk-pipeline.test.ts runs the SDK at the end of the real services.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventId, parseEventId } from '../../lib/event-id.js';
import { changelogEntry, entryId, type FullEntry, type ProjectRef } from '../../router/changelog.js';
import { MemoryChangelogStore } from '../../router/memory-changelog.js';
import type { RouterEvent } from '../../router/event.js';
import { encodeMessages, type PayloadMode } from '../../router/messages.js';
import { replayAnswer } from '../../router/replay.js';
import { planSequence } from '../../router/sequencer.js';
import { createClient, type Change, type RealtimeClient, type Status } from '@taskflow/realtime';
import { TcpProxy } from '../../clients/web-sdk/test/tcp-proxy.js';
import { startTestBroker } from '../support/stack.js';
import type { Broker } from '../../infra/local/broker.js';
import { sleep, waitFor } from '../support/wait.js';
import { sampleEvent } from '../../schemas/fixtures.js';

/** The router's sequencing, changelog, encoding and replay, publishing over HTTP to the broker. */
class InProcessRouter {
  readonly store = new MemoryChangelogStore();
  readonly commitTimes = new Map<string, number>();
  private lsn = 0x16_0000_0000n;
  private server!: Server;
  replayUrl = '';
  publishFailures = 0;

  constructor(private readonly publishUrl: string) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void (async () => {
        const u = new URL(req.url ?? '/', 'http://x');
        const m = /^\/v1\/workspaces\/([^/]+)\/projects\/([^/]+)\/changes$/.exec(u.pathname);
        if (!m || !/^Bearer .+/.test(req.headers.authorization ?? '')) {
          res.writeHead(m ? 401 : 404).end();
          return;
        }
        const after = Number(u.searchParams.get('after'));
        const limit = Number(u.searchParams.get('limit'));
        const page = await this.store.read({ workspaceId: m[1]!, projectId: m[2]! }, after, limit);
        const answer = replayAnswer(page, after);
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
      })();
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.replayUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** One transaction of `n` task updates: sequenced, appended to the changelog, then published. */
  /** `how.changelog`: what the changelog keeps (the router's ROUTER_PAYLOAD_MODE), full unless given. */
  async commit(project: ProjectRef, n: number, how: { mode: 'full' | 'thin'; gzip: boolean; publish: boolean; changelog?: PayloadMode }): Promise<void> {
    this.lsn += 0x100n;
    const events: RouterEvent[] = [];
    for (let txIndex = 0; txIndex < n; txIndex += 1) {
      const id = eventId({ commitLsn: this.lsn, txIndex });
      const taskId = randomUUID();
      events.push({
        id,
        position: parseEventId(id),
        workspaceId: project.workspaceId,
        projectId: project.projectId,
        type: 'taskflow.task.updated',
        envelope: sampleEvent('task.updated', {
          commitLsn: this.lsn,
          txIndex,
          txSize: n,
          source: '//taskflow/capture/test',
          time: new Date().toISOString(),
          workspaceId: project.workspaceId,
          projectId: project.projectId,
          entityId: taskId,
          row: { title: id },
          changed: ['title'],
        }),
      });
      this.commitTimes.set(id, Date.now());
    }
    const head = await this.store.readHead(project);
    const plan = planSequence(head, events, new Map());
    await this.store.append(project, plan.fresh.map((c) => changelogEntry(c.seq, c.event.envelope, how.changelog ?? 'full')), head, plan.head);
    if (how.publish) await this.publish(project, plan.changes, how);
  }

  /** Publishes a seq range again (a QoS 1 resend or a router reprocessing after a crash). */
  async republish(project: ProjectRef, after: number, limit: number): Promise<void> {
    const page = await this.store.read(project, after, limit);
    const changes = page.entries.map((e) => ({ seq: e.seq, event: { id: entryId(e), envelope: (e as FullEntry).event } as RouterEvent }));
    await this.publish(project, changes, { mode: 'full', gzip: false });
  }

  async history(project: ProjectRef): Promise<{ seq: number; id: string }[]> {
    const page = await this.store.read(project, 0, 1_000_000);
    return page.entries.map((e) => ({ seq: e.seq, id: entryId(e) }));
  }

  private async publish(project: ProjectRef, changes: Parameters<typeof encodeMessages>[1], how: { mode: 'full' | 'thin'; gzip: boolean }): Promise<void> {
    for (const message of encodeMessages(project, changes, { ...how, maxBytes: 128 * 1024 })) {
      try {
        const res = await fetch(`${this.publishUrl}/topics/${encodeURIComponent(message.topic)}?qos=1`, { method: 'POST', body: new Uint8Array(message.payload) });
        if (!res.ok) this.publishFailures += 1;
      } catch {
        this.publishFailures += 1; // broker down: the change is in the changelog, subscribers replay it
      }
    }
  }
}

/** What one subscription handed its application. */
class Seen {
  changes: Change[] = [];
  statuses: Status[] = [];
  resyncs: number[] = [];
  latencies: number[] = [];
  constructor(private readonly router: InProcessRouter) {}
  handlers(fromSeq?: number) {
    return {
      ...(fromSeq === undefined ? {} : { fromSeq }),
      onChange: (c: Change) => {
        this.changes.push(c);
        const committed = this.router.commitTimes.get(c.mode === 'full' ? c.event.id : c.id);
        if (committed !== undefined) this.latencies.push(Date.now() - committed);
      },
      onResync: (info: { latestSeq: number }) => this.resyncs.push(info.latestSeq),
      onStatus: (s: Status) => this.statuses.push(s),
    };
  }
  get last(): number {
    return this.changes[this.changes.length - 1]?.seq ?? 0;
  }
  get status(): Status | undefined {
    return this.statuses[this.statuses.length - 1];
  }
}

const idOf = (c: Change): string => (c.mode === 'full' ? c.event.id : c.id);
const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

let broker: Broker;
let router: InProcessRouter;
let proxy: TcpProxy;
const clients: RealtimeClient[] = [];

beforeAll(async () => {
  broker = await startTestBroker();
  router = await new InProcessRouter(broker.publishUrl).start();
  proxy = await new TcpProxy({ host: '127.0.0.1', port: Number(new URL(broker.wsUrl).port) }).start();
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  proxy.refusing = false;
});

afterAll(async () => {
  await proxy.close();
  await router.close();
  await broker.stop();
});

function sdkClient(): RealtimeClient {
  const client = createClient({
    url: `ws://127.0.0.1:${proxy.port}/mqtt`,
    token: 'dev-token',
    replayUrl: router.replayUrl,
    backoff: { baseMs: 100, maxMs: 1000 },
  });
  clients.push(client);
  return client;
}

describe('web SDK through a real broker', () => {
  it('delivers exactly the committed history while changes flow, sockets are cut and the broker restarts', async () => {
    const workspaceId = randomUUID();
    const projects: ProjectRef[] = [0, 1, 2].map(() => ({ workspaceId, projectId: randomUUID() }));
    // Two subscribers per project, spread over three clients (one client holds all three).
    const subscribers: { project: ProjectRef; seen: Seen }[] = [];
    const all = sdkClient();
    for (const project of projects) {
      for (const client of [all, sdkClient()]) {
        const seen = new Seen(router);
        client.subscribeProject(project.workspaceId, project.projectId, seen.handlers(1));
        subscribers.push({ project, seen });
      }
    }
    await waitFor(() => subscribers.every((s) => s.seen.status === 'live'), 'all live');

    let producing = true;
    let committed = 0;
    const producer = (async () => {
      for (let i = 0; producing; i += 1) {
        const project = projects[i % projects.length]!;
        await router.commit(project, 1 + (i % 3), { mode: i % 4 === 3 ? 'thin' : 'full', gzip: i % 2 === 0, publish: i % 17 !== 5 });
        committed += 1 + (i % 3);
        if (i % 11 === 7) await router.republish(project, Math.max(0, (await router.store.readHead(project)).seq - 4), 4);
        await sleep(5); // not a wait: paces the producer
      }
    })();

    // Each disruption hits live connections (so each is seen as one more 'offline'). The sleeps are
    // the schedule (changes flow between disruptions), not waits: allLive() is the condition.
    const disruptions: string[] = [];
    const allLive = () => waitFor(() => subscribers.every((s) => s.seen.status === 'live'), 'all live again');
    for (let round = 0; round < 3; round += 1) {
      await sleep(300);
      await allLive();
      proxy.cut();
      disruptions.push('cut');
    }
    await sleep(300);
    await allLive();
    await broker.stop();
    await sleep(500); // reconnect attempts fail meanwhile, publishes too
    await broker.start();
    disruptions.push('broker restart');
    await sleep(300);
    await allLive();
    proxy.cut();
    disruptions.push('cut');
    await sleep(600);
    producing = false;
    await producer;
    // A lost publish shows as a hole only once something follows it (or at a reconnect): end
    // with one delivered change per project, as a live project would sooner or later.
    for (const project of projects) await router.commit(project, 1, { mode: 'full', gzip: false, publish: true });
    committed += projects.length;

    const histories = new Map<ProjectRef, { seq: number; id: string }[]>();
    for (const project of projects) histories.set(project, await router.history(project));
    await waitFor(
      () => subscribers.every((s) => s.seen.last === histories.get(s.project)!.length && s.seen.status === 'live'),
      () => `every subscriber caught up: ${subscribers.map((s) => `${s.seen.last}/${histories.get(s.project)!.length} ${s.seen.status}`).join(', ')}`,
    );

    for (const { project, seen } of subscribers) {
      const history = histories.get(project)!;
      expect(seen.changes.map((c) => c.seq)).toEqual(history.map((h) => h.seq));
      expect(seen.changes.map(idOf)).toEqual(history.map((h) => h.id));
      expect(seen.resyncs).toEqual([]);
      expect(seen.statuses.filter((s) => s === 'offline').length).toBeGreaterThanOrEqual(disruptions.length);
    }
    const latencies = subscribers.flatMap((s) => s.seen.latencies);
    console.log(
      `sdk integration: ${committed} changes in ${projects.length} projects, ${subscribers.length} subscriptions, ` +
        `disruptions: ${disruptions.join(', ')}; publish failures ${router.publishFailures}; ` +
        `commit→onChange p50 ${percentile(latencies, 50)} ms, p95 ${percentile(latencies, 95)} ms, max ${Math.max(...latencies)} ms (outages included)`,
    );
  }, 60_000);

  it('delivers within milliseconds when nothing goes wrong', async () => {
    const project: ProjectRef = { workspaceId: randomUUID(), projectId: randomUUID() };
    const seen = new Seen(router);
    sdkClient().subscribeProject(project.workspaceId, project.projectId, seen.handlers(1));
    await waitFor(() => seen.status === 'live', 'live');
    for (let i = 0; i < 200; i += 1) {
      await router.commit(project, 1, { mode: i % 2 === 0 ? 'full' : 'thin', gzip: i % 3 === 0, publish: true });
      await sleep(2); // not a wait: paces the commits
    }
    await waitFor(() => seen.last === 200, 'all 200');
    expect(seen.changes.map((c) => c.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const p50 = percentile(seen.latencies, 50);
    console.log(`sdk integration, steady: commit→onChange p50 ${p50} ms, p95 ${percentile(seen.latencies, 95)} ms over 200 changes`);
    expect(p50).toBeLessThan(100); // live delivery, not the 250 ms reorder window + replay
  });

  it('after an outage longer than the changelog, resyncs once and then delivers exactly the history from the new position', async () => {
    const project: ProjectRef = { workspaceId: randomUUID(), projectId: randomUUID() };
    const seen = new Seen(router);
    sdkClient().subscribeProject(project.workspaceId, project.projectId, seen.handlers(1));
    await waitFor(() => seen.status === 'live', 'live');
    await router.commit(project, 3, { mode: 'full', gzip: false, publish: true });
    await waitFor(() => seen.last === 3, 'first changes');

    proxy.refusing = true;
    proxy.cut();
    await waitFor(() => seen.status === 'offline', 'offline');
    for (let i = 0; i < 5; i += 1) await router.commit(project, 2, { mode: 'full', gzip: false, publish: true });
    router.store.expireThrough(project, 8); // the changelog forgot seqs 1..8 (TTL)
    proxy.refusing = false;

    await waitFor(() => seen.resyncs.length === 1 && seen.status === 'live', 'resync');
    expect(seen.resyncs).toEqual([13]);
    await router.commit(project, 2, { mode: 'thin', gzip: true, publish: true });
    await waitFor(() => seen.last === 15, 'changes after the resync');
    expect(seen.changes.map((c) => c.seq)).toEqual([1, 2, 3, 14, 15]);
  });

  it('from a router in thin mode, replays what the live messages carried: the application gets the same thin changes either way, and both forms across a switch', async () => {
    const project: ProjectRef = { workspaceId: randomUUID(), projectId: randomUUID() };
    const seen = new Seen(router);
    sdkClient().subscribeProject(project.workspaceId, project.projectId, seen.handlers(1));
    await waitFor(() => seen.status === 'live', 'live');
    // A full router's changes, then (the switch) a thin router's: live, and lost while offline.
    await router.commit(project, 2, { mode: 'full', gzip: false, publish: true });
    await router.commit(project, 2, { mode: 'thin', gzip: true, publish: true, changelog: 'thin' });
    await waitFor(() => seen.last === 4, 'live changes');
    proxy.refusing = true;
    proxy.cut();
    await waitFor(() => seen.status === 'offline', 'offline');
    await router.commit(project, 1, { mode: 'full', gzip: false, publish: false });
    await router.commit(project, 3, { mode: 'thin', gzip: false, publish: false, changelog: 'thin' });
    proxy.refusing = false;
    await waitFor(() => seen.last === 8 && seen.status === 'live', 'replayed after the outage');
    await router.commit(project, 2, { mode: 'thin', gzip: false, publish: true, changelog: 'thin' });
    await waitFor(() => seen.last === 10, 'live after the replay');

    expect(seen.changes.map((c) => [c.seq, c.mode])).toEqual([[1, 'full'], [2, 'full'], [3, 'thin'], [4, 'thin'], [5, 'full'], [6, 'thin'], [7, 'thin'], [8, 'thin'], [9, 'thin'], [10, 'thin']]);
    // The replayed thin changes (6..8) have the live ones' shape (3, 4, 9, 10) and the ids the changelog holds.
    const shape = (c: Change) => Object.keys(c).sort();
    for (const c of seen.changes.filter((x) => x.mode === 'thin')) expect(shape(c)).toEqual(shape(seen.changes[2]!));
    expect(seen.changes.map(idOf)).toEqual((await router.history(project)).map((h) => h.id));
    const replayed = seen.changes[6]!;
    expect(replayed).toEqual({ seq: 7, mode: 'thin', id: expect.any(String), type: 'taskflow.task.updated', time: expect.any(String), key: { id: expect.any(String) }, changed: ['title'] });
  });
});
