// `npm run bench:audit-core` → test/bench/results/audit-core.json. The audit writer's CPU per
// change without Kinesis in the way: validated envelopes (task updates with an actor, over 8
// workspaces) in batches of 1,000, as GetRecords would hand them over, through the
// AuditShardWriter (JSON parse, validation, record, pseudonym and digests, Merkle root, segment
// hash) into the filesystem store (fsync per segment) under a temporary directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pseudonymizer } from '../../audit/record.js';
import { AuditShardWriter } from '../../audit/shard-writer.js';
import { FileAuditStore } from '../../audit/store.js';
import type { UserRecord } from '@taskflow/stream';
import { silentLogger } from '../../lib/logger.js';
import { sampleEvent } from '../../schemas/fixtures.js';
import { validateEvent } from '../../schemas/validate.js';
import { median, writeBenchResult } from './report.js';

const CHANGES = Number(process.env.BENCH_CHANGES ?? 50_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 1000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SHARD = 'shardId-000000000000';

const records: UserRecord[] = Array.from({ length: CHANGES }, (_, i) => {
  const ws = `11111111-1111-4111-8111-00000000000${i % 8}`;
  const e = sampleEvent('task.updated', { workspaceId: ws, commitLsn: BigInt(0x100000 + i * 0x100), entityId: `33333333-3333-4333-8333-${String(i % 5000).padStart(12, '0')}` });
  (e.data.source as unknown as Record<string, unknown>).actor = { userId: `44444444-4444-4444-8444-${String(i % 200).padStart(12, '0')}`, via: 'bench' };
  return { shardId: SHARD, sequenceNumber: String(1_000_000 + i), subSequenceNumber: 0, partitionKey: ws, data: Buffer.from(JSON.stringify(e)) };
});

async function run(): Promise<{ cpuUsPerChange: number; wallChangesPerSec: number; storedBytesPerChange: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-audit-'));
  try {
    const store = new FileAuditStore(dir);
    const writer = new AuditShardWriter(SHARD, { consumer: 'audit', store, deadLetters: { put: () => Promise.resolve() }, validate: validateEvent, pseudonyms: new Pseudonymizer(Buffer.from('bench-audit-key-0123456789abcdef')), knownIdentities: new Set(), logger: silentLogger });
    await writer.initialize({ shardId: SHARD, parentStates: [] });
    const checkpointer = { checkpoint: () => Promise.resolve() };
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < records.length; i += BATCH) await writer.processRecords({ records: records.slice(i, i + BATCH), millisBehindLatest: 0 }, checkpointer);
    const wallMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    let bytes = 0;
    for (const key of await store.list('segments/')) bytes += (await store.get(key))!.length;
    return { cpuUsPerChange: (used.user + used.system) / CHANGES, wallChangesPerSec: CHANGES / (wallMs / 1000), storedBytesPerChange: bytes / CHANGES };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const load = loadavg()[0];
await run(); // warm-up: JIT, validator compilation
const runs = [];
for (let r = 0; r < RUNS; r++) runs.push(await run());
const cpu = median(runs.map((r) => r.cpuUsPerChange));
const file = writeBenchResult(
  'audit-core',
  { changes: CHANGES, batch: BATCH, runs: RUNS, store: 'filesystem (fsync per segment)', loadavg1AtStart: load },
  {
    cpu_us_per_change_median: Math.round(cpu * 10) / 10,
    changes_per_cpu_second: Math.round(1e6 / cpu),
    wall_changes_per_sec_median: Math.round(median(runs.map((r) => r.wallChangesPerSec))),
    stored_bytes_per_change: Math.round(median(runs.map((r) => r.storedBytesPerChange))),
  },
);
console.log(`audit-core: ${cpu.toFixed(1)} µs CPU per change (median of ${RUNS}), ${runs.map((r) => r.cpuUsPerChange.toFixed(1)).join(', ')}; wrote ${file}`);
