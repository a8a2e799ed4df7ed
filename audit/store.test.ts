// The store adapters' edges that the chain tests do not reach: a crash's temp files swept by the
// file store, and the S3 store's answer to a conditional PUT that lost the race (412).
import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { S3AuditStore } from './s3-store.js';
import { FileAuditStore } from './store.js';

describe('FileAuditStore', () => {
  it('sweeps temp files a crash left behind, and not a live writer\'s', async () => {
    const root = mkdtempSync(join(tmpdir(), 'audit-store-'));
    mkdirSync(join(root, 'segments', 'shard-a'), { recursive: true });
    const stale = join(root, 'segments', 'shard-a', '.1234-abc123.tmp');
    const fresh = join(root, 'segments', 'shard-a', '.1235-def456.tmp');
    writeFileSync(stale, 'half a segment');
    writeFileSync(fresh, 'being written');
    const now = Date.now();
    utimesSync(stale, new Date(now - 3600_000), new Date(now - 3600_000));
    const store = new FileAuditStore(root, now);
    expect([existsSync(stale), existsSync(fresh)]).toEqual([false, true]);
    expect(await store.list('segments/')).toEqual([]);
  });
});

describe('S3AuditStore', () => {
  it('answers false when the conditional PUT finds the key taken (412), and throws other errors', async () => {
    const failure = (status: number) => Object.assign(new Error(`status ${status}`), { $metadata: { httpStatusCode: status } });
    let putStatus = 412;
    const client = {
      send: async (command: { constructor: { name: string } }) => {
        if (command.constructor.name === 'HeadObjectCommand') throw failure(404);
        throw failure(putStatus);
      },
    } as unknown as S3Client;
    const store = new S3AuditStore(client, { lockedBucket: 'l', mutableBucket: 'm', retentionDays: 1 });
    expect(await store.create('segments/s/000000000000.json', new Uint8Array([1]))).toBe(false);
    putStatus = 409; // a concurrent conditional write: the writer retries
    await expect(store.create('segments/s/000000000000.json', new Uint8Array([1]))).rejects.toThrow('status 409');
  });
});
