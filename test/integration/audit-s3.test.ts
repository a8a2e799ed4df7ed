// The audit trail's S3 store (audit/s3-store.ts) against s3rver, a real S3 API: what it sends —
// every create-once object with Object Lock in compliance mode, its retain-until date, a
// conditional `If-None-Match: *` and a SHA-256 checksum (s3rver ignores those headers, so the
// test reads them off the requests as the client sent them) — and real round trips: never an
// overwrite, identity mappings in their own bucket, and `taskflow audit verify` reading a chain
// back from S3 and finding a replaced segment.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import S3rver from 's3rver';
import { buildSegment, encodeSegment, type SegmentLink, segmentKey } from '../../audit/chain.js';
import { identityKey } from '../../audit/identities.js';
import { verifyTrail } from '../../audit/inspect.js';
import type { AuditRecord } from '../../audit/record.js';
import { S3AuditStore } from '../../audit/s3-store.js';
import { createS3Client } from '../../lib/aws.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LOCKED = 'audit-locked';
const IDENTITIES = 'audit-identities';
const NOW = new Date('2026-12-03T10:00:00.000Z');
const RETENTION_DAYS = 400;

let server: S3rver;
let dir: string;
let endpoint: string;
let client: S3Client;
/** Every request the client sent, as sent (after signing): method, path and headers. */
const sent: { method: string; path: string; headers: Record<string, string> }[] = [];

const record = (n: number): AuditRecord => ({
  eventId: `${n.toString(16).toUpperCase().padStart(16, '0')}-00000000`,
  type: 'taskflow.task.updated',
  subject: `tasks/${n % 3}`,
  workspaceId: 'ws',
  op: 'u',
  actor: n % 2 ? 'p1' : null,
  time: new Date(Date.UTC(2026, 11, 1, 0, n)).toISOString(),
  lsn: `0/${n.toString(16).toUpperCase()}`,
  xid: n,
  txIndex: 0,
  before: null,
  after: 'd',
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'audit-s3-'));
  server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: LOCKED }, { name: IDENTITIES }] });
  const { port } = await server.run();
  endpoint = `http://127.0.0.1:${port}`;
  client = createS3Client({ region: 'us-east-1', s3Endpoint: endpoint });
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { method: string; path: string; headers: Record<string, string> };
      sent.push({ method: request.method, path: request.path, headers: { ...request.headers } });
      return next(args);
    },
    { step: 'deserialize', name: 'recordSentRequests' },
  );
});

afterAll(async () => {
  client?.destroy();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const store = () => new S3AuditStore(client, { lockedBucket: LOCKED, mutableBucket: IDENTITIES, retentionDays: RETENTION_DAYS, now: () => NOW });

describe('S3AuditStore against s3rver', () => {
  it('writes a create-once object with Object Lock (compliance, retain until now + retention), If-None-Match: * and a SHA-256 checksum', async () => {
    sent.length = 0;
    const body = new TextEncoder().encode('{"proof":1}\n');
    expect(await store().create('gdpr-proofs/r1.json', body)).toBe(true);
    const puts = sent.filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(1);
    const put = puts[0]!;
    expect(put.path).toBe(`/${LOCKED}/gdpr-proofs/r1.json`);
    expect(put.headers['x-amz-object-lock-mode']).toBe('COMPLIANCE');
    expect(new Date(put.headers['x-amz-object-lock-retain-until-date']!).getTime()).toBe(NOW.getTime() + RETENTION_DAYS * 24 * 3600 * 1000);
    expect(put.headers['if-none-match']).toBe('*');
    expect(put.headers['x-amz-checksum-sha256']).toBe(createHash('sha256').update(body).digest('base64'));
    expect(Buffer.from((await store().get('gdpr-proofs/r1.json'))!).toString()).toBe('{"proof":1}\n');
  });

  it('never overwrites: a second create of a key is refused and the first object stays', async () => {
    const key = 'gdpr-proofs/r2.json';
    expect(await store().create(key, new TextEncoder().encode('first'))).toBe(true);
    sent.length = 0;
    expect(await store().create(key, new TextEncoder().encode('second'))).toBe(false);
    expect(sent.filter((r) => r.method === 'PUT')).toEqual([]);
    expect(Buffer.from((await store().get(key))!).toString()).toBe('first');
  });

  it('keeps the identity mapping in the bucket without Object Lock, and refuses to overwrite or delete anything else', async () => {
    const s = store();
    const key = identityKey('p-one');
    sent.length = 0;
    await s.put(key, new TextEncoder().encode('{"userId":"u1"}'));
    const put = sent.find((r) => r.method === 'PUT')!;
    expect(put.path).toBe(`/${IDENTITIES}/${key}`);
    expect(put.headers['x-amz-object-lock-mode']).toBeUndefined();
    sent.length = 0;
    expect(await s.list('identities/')).toEqual([key]);
    // The erasure sink's listing asks the identity bucket only: the gdpr processor may list no other.
    expect(sent.map((r) => r.path.split('/')[1])).toEqual([IDENTITIES]);
    expect(Buffer.from((await s.get(key))!).toString()).toBe('{"userId":"u1"}');
    expect((await s.list('')).filter((k) => k.startsWith('identities/'))).toEqual([key]);
    await s.delete(key);
    expect(await s.get(key)).toBeUndefined();
    await expect(s.put(segmentKey('shard-h', 0), new Uint8Array())).rejects.toThrow(/create-once/);
    await expect(s.delete(segmentKey('shard-h', 0))).rejects.toThrow(/create-once/);
    await expect(s.create(identityKey('p-two'), new Uint8Array())).rejects.toThrow(/mutable/);
    expect(await s.get('segments/none/000000000009.json')).toBeUndefined();
  });

  it('lists in key order, after a key', async () => {
    const s = store();
    const keys = Array.from({ length: 23 }, (_, i) => `redriven/${String(i).padStart(4, '0')}`);
    for (const k of [...keys].reverse()) await s.create(k, new Uint8Array([1]));
    expect(await s.list('redriven/')).toEqual(keys);
    expect(await s.list('redriven/', keys[19])).toEqual(keys.slice(20));
  });

  it('`taskflow audit verify` reads a chain back from S3 and finds a replaced segment', async () => {
    const s = store();
    let head: SegmentLink | undefined;
    for (let i = 0; i < 4; i++) {
      const seg = buildSegment({ shardId: 'shard-v', head, parents: [], through: { sequenceNumber: String(i + 1), subSequenceNumber: 0 }, records: [record(i + 1)] });
      expect(await s.create(segmentKey('shard-v', seg.index), encodeSegment(seg))).toBe(true);
      head = { shardId: 'shard-v', index: seg.index, hash: seg.hash };
    }
    expect((await verifyTrail(s)).find((r) => r.shardId === 'shard-v')).toMatchObject({ segments: 4, records: 4 });
    // Asynchronously: s3rver answers from this process.
    const verify = () =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', AWS_REGION: 'us-east-1', S3_ENDPOINT: endpoint, AUDIT_STORE: 's3', AUDIT_BUCKET: LOCKED, AUDIT_IDENTITY_BUCKET: IDENTITIES };
        execFile(process.execPath, [join(root, 'bin', 'taskflow.js'), 'audit', 'verify', '--json'], { cwd: dir, env, timeout: 30_000 }, (err, stdout, stderr) =>
          resolve({ status: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
        );
      });
    const ok = await verify();
    expect({ status: ok.status, stderr: ok.stderr }).toEqual({ status: 0, stderr: '' });
    expect(JSON.parse(ok.stdout).shards.find((r: { shardId: string }) => r.shardId === 'shard-v')).toMatchObject({ segments: 4, records: 4 });
    // s3rver has no Object Lock: replace segment 2 behind the store's back, as only a broken lock could.
    const forged = buildSegment({ shardId: 'shard-v', head: undefined, parents: [], through: { sequenceNumber: '0', subSequenceNumber: 0 }, records: [record(99)] });
    await client.send(new PutObjectCommand({ Bucket: LOCKED, Key: segmentKey('shard-v', 2), Body: encodeSegment({ ...forged, index: 2 }) }));
    const broken = await verify();
    expect(broken.status).toBe(1);
    expect(JSON.parse(broken.stdout).shards.find((r: { shardId: string }) => r.shardId === 'shard-v').finding).toMatchObject({ index: 2 });
  });
});
