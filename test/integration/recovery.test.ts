// Recovery after a crash, as production runs the pipeline: capture as an active/standby pair on
// one slot and two router instances sharing the shards, each instance its own process under the
// supervisor (restarted when it dies, with its stable id). Under load the active capture is
// SIGKILLed, then a router; after each kill every project's first change committed after it
// must reach its live SDK subscriber within 3 s, and the changes committed in the window after
// it must arrive with a p95 commit→client under 5 s (each on top of the pipeline's p95 just
// before the kill: the host is shared). Every subscription must end up with
// exactly its project's committed history (truth: a test_decoding slot), once, in order.
// (bench:recovery measures the single-instance case, where a restart's start-up adds to it.)
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { createClient, type Change, type RealtimeClient } from '@taskflow/realtime';
import { runWorkload, setupWorkloadTenants } from '../../db/workload.js';
import { checkSubscription, percentile, type Delivered } from '../bench/e2e-analysis.js';
import { startHistoryRecorder, type HistoryEvent, type HistoryRecorder } from '../support/history.js';
import { grantObserver, startTestPipeline, supervisePipelineServices, type SupervisedPipelineServices, type TestPipeline } from '../support/pipeline.js';
import { sleep, waitFor } from '../support/wait.js';
import { tableEnvVar } from '../../lib/config.js';
import { uniqueName, waitForEvenLeases } from '../support/stack.js';

/**
 * The targets: what a kill may add to the pipeline's latency of the moment (p95 over the 3 s
 * before the first kill), so a host slowed by other work does not fail the test while a
 * recovery that waits out a 10 s lease failover or a growing reconnect backoff still does.
 */
const FIRST_CHANGE_BOUND_MS = 3000;
const P95_BOUND_MS = 5000;
/** Changes committed this long after a kill count for its p95 (the issue says 10 s; the test keeps to its runtime). */
const WINDOW_MS = 7000;

let pipeline: TestPipeline;
let services: SupervisedPipelineServices;
let history: HistoryRecorder;
const clients: RealtimeClient[] = [];
const delivered: Delivered[] = [];
const warnings: string[] = [];

beforeAll(async () => {
  pipeline = await startTestPipeline({ prefix: 'recovery', shards: 2, services: 'none' });
  services = await supervisePipelineServices(pipeline, { captures: 2, routers: 2, onWarning: (instance, line) => warnings.push(`${instance}: ${line.slice(0, 300)}`) });
  await services.ready();
  await waitForEvenLeases(pipeline.env[tableEnvVar('leases')]!, 'router', 2);
  history = await startHistoryRecorder(pipeline.databaseUrl, { slotName: uniqueName('recovery_truth') });
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await services?.stop();
  await history?.stop();
  await pipeline?.stop();
});

describe('recovery after a SIGKILL', () => {
  it('has every instance live and ready on its probes: the active capture, the standby waiting for the slot, both routers', async () => {
    const probe = async (instance: string, path: string) => {
      const r = await fetch(`${services.metricsBase[instance]}${path}`);
      return { status: r.status, body: (await r.json()) as { phase?: string; leasesHeld?: number } };
    };
    // Ready is reached once a lease cycle has run; the standby's phase once it polled the slot.
    const ready = await waitFor(
      async () => {
        const all = await Promise.all(['capture-0', 'capture-1', 'router-0', 'router-1'].map((i) => probe(i, '/readyz')));
        // Both routers' lease counts settle once neither is still taking one over from the other.
        const leases = (all[2]!.body.leasesHeld ?? 0) + (all[3]!.body.leasesHeld ?? 0);
        return all.every((p) => p.status === 200) && leases === 2 ? all : undefined;
      },
      () => 'every instance to answer 200 on /readyz, the two routers holding the 2 leases between them',
      30_000,
    );
    expect(ready.slice(0, 2).map((p) => p.body.phase).sort()).toEqual(['standby', 'streaming']);
    expect(ready[2]!.body.leasesHeld! + ready[3]!.body.leasesHeld!).toBe(2);
    for (const i of ['capture-0', 'capture-1', 'router-0', 'router-1']) expect((await probe(i, '/healthz')).status).toBe(200);
  });

  it('a standby capture and a peer router each deliver again within 3 s of the kill, losing nothing', async () => {
    const tenantOptions = { workspaces: 2, projectsPerWorkspace: 2, seed: uniqueName('recovery') };
    const tenants = await setupWorkloadTenants(pipeline.databaseUrl, tenantOptions);
    const token = await grantObserver(pipeline.databaseUrl, tenants.workspaces.map((w) => w.id), pipeline.token);
    const probes = tenants.workspaces.map((w) => `${services.replayUrl}/v1/workspaces/${w.id}/projects/${w.projects[0]}/changes?after=0&limit=1`);
    await waitFor(
      async () => (await Promise.all(probes.map((u) => fetch(u, { headers: { authorization: `Bearer ${token}` } }).catch(() => undefined)))).every((r) => r?.status === 200),
      () => 'the router to learn the observer memberships',
    );
    for (const w of tenants.workspaces) {
      for (const projectId of w.projects) {
        const d: Delivered = { workspaceId: w.id, projectId, ids: [], commitMs: [], receivedMs: [], resyncs: 0, offlines: 0 };
        delivered.push(d);
        const client = createClient({ url: pipeline.broker.wsUrl, token, replayUrl: services.replayUrl, clientIdSuffix: uniqueName('recovery-sdk', 40, '-') });
        clients.push(client);
        client.subscribeProject(w.id, projectId, {
          fromSeq: 1,
          onChange: (change: Change) => {
            if (change.mode !== 'full') return;
            d.ids.push(change.event.id);
            d.commitMs.push(Date.parse(change.event.time));
            d.receivedMs.push(Date.now());
          },
          onResync: () => (d.resyncs += 1),
        });
      }
    }

    const abort = new AbortController();
    const workload = runWorkload({ databaseUrl: pipeline.databaseUrl, ...tenantOptions, ratePerSec: 100, concurrency: 2, signal: abort.signal });
    const kills: { instance: string; at: number }[] = [];
    try {
      await waitFor(() => delivered.every((d) => d.ids.length > 0), () => 'every subscription to receive a first change', 30_000);
      // The active capture (the one streaming), then router-0 (it holds one of the two shards).
      const active = [...services.lines].reverse().find((l) => l.msg === 'streaming from the slot')!.instance;
      for (const instance of [active, 'router-0']) {
        const pid = services.supervisor.pid(instance);
        expect(pid).toBeDefined();
        kills.push({ instance, at: Date.now() });
        process.kill(pid!, 'SIGKILL');
        await sleep(WINDOW_MS + 1000); // not a wait: the measured window after each kill, under load
      }
    } finally {
      abort.abort();
      await workload;
    }

    const truth = await history.collect();
    const byProject = new Map<string, HistoryEvent[]>();
    for (const e of truth) if (e.projectId) byProject.set(e.projectId, [...(byProject.get(e.projectId) ?? []), e]);
    await waitFor(() => delivered.every((d) => d.ids.length >= (byProject.get(d.projectId)?.length ?? 0)), () => 'every committed change at its subscriber', 30_000);
    await sleep(500); // asserting that nothing happens: a late duplicate would show up now

    for (const d of delivered) {
      const check = checkSubscription(byProject.get(d.projectId) ?? [], d);
      expect({ project: d.projectId, ...check }).toEqual({ project: d.projectId, lost: 0, lostAtTail: 0, duplicates: 0, orderViolations: 0, unexpected: 0 });
    }
    // Per project (so the shards of the surviving router do not hide the dead one's): when its
    // first change committed after the kill arrived; the slowest project counts.
    const recoveries = kills.map(({ instance, at }) => {
      let slowestFirst = 0;
      const latencies: number[] = [];
      for (const d of delivered) {
        let first = Number.POSITIVE_INFINITY;
        d.commitMs.forEach((commit, i) => {
          if (commit < at) return;
          first = Math.min(first, d.receivedMs[i]!);
          if (commit < at + WINDOW_MS) latencies.push(d.receivedMs[i]! - commit);
        });
        slowestFirst = Math.max(slowestFirst, first - at);
      }
      return { instance, firstChangeMs: slowestFirst, p95Ms: percentile(latencies, 95), samples: latencies.length };
    });
    const before = kills[0]!.at;
    const baseline = percentile(delivered.flatMap((d) => d.commitMs.flatMap((c, i) => (c >= before - 3000 && c < before ? [d.receivedMs[i]! - c] : []))), 95);
    if (process.env.RECOVERY_TEST_LOG) writeFileSync(process.env.RECOVERY_TEST_LOG, services.lines.map((l) => `${l.instance} ${l.at} ${l.msg}`).join('\n'));
    console.log(`recovery: p95 in the 3 s before the first kill ${baseline} ms; ${JSON.stringify(recoveries)}${warnings.length ? `\nservice warnings:\n${warnings.slice(0, 10).join('\n')}` : ''}`);
    for (const r of recoveries) {
      expect({ instance: r.instance, firstWithinBound: r.firstChangeMs < baseline + FIRST_CHANGE_BOUND_MS, p95WithinBound: r.p95Ms < baseline + P95_BOUND_MS }).toEqual({ instance: r.instance, firstWithinBound: true, p95WithinBound: true });
      expect(r.samples).toBeGreaterThan(0);
    }
  }, 120_000);
});
