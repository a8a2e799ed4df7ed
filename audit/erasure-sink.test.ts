// The audit-trail erasure sink on the real store (FileAuditStore, files on disk): the subject's
// pseudonym mapping, and one naming them under an earlier key, are deleted; another user's stays;
// scan then finds 0 and a repeat purge changes nothing. The segments are not touched.
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ErasureSink, SubjectIdentifiers } from '../lib/erasure.js';
import { openErasureSinks } from './erasure-sink.js';
import { identityKey, resolveIdentity } from './identities.js';
import { Pseudonymizer } from './record.js';
import { FileAuditStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'audit-erasure-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEY = 'audit-erasure-test-key-0123456789abcdef';
const SUBJECT = '66666666-6666-4666-8666-0000000000a1';
const OTHER = '66666666-6666-4666-8666-0000000000a2';
const IDS: SubjectIdentifiers = { subject: SUBJECT, email: 'ada@example.com', displayName: 'Ada', authored: [] };

describe('audit-trail erasure sink', () => {
  it('cuts the pseudonym: the mappings naming the subject go, segments and other mappings stay', async () => {
    const store = new FileAuditStore(dir);
    const p = new Pseudonymizer(new TextEncoder().encode(KEY));
    const old = new Pseudonymizer(new TextEncoder().encode(`${KEY}-rotated-away`));
    const put = (pseudonym: string, userId: string) => store.put(identityKey(pseudonym), Buffer.from(JSON.stringify({ userId })));
    await put(p.actor(SUBJECT), SUBJECT);
    await put(old.actor(SUBJECT), SUBJECT);
    await put(p.actor(OTHER), OTHER);
    await store.create('segments/s/0001.json', Buffer.from('{"actor":"x"}'));

    const { sinks, close } = await openErasureSinks({ AUDIT_KEY: KEY, AUDIT_STORE_DIR: dir });
    const sink = sinks[0] as ErasureSink;
    expect(await sink.scan(IDS)).toEqual({ scanned: 3, found: 2 });
    expect(await sink.purge(IDS)).toEqual({ changed: 2 });
    expect(await sink.scan(IDS)).toEqual({ scanned: 1, found: 0 });
    expect(await sink.purge(IDS)).toEqual({ changed: 0 });
    expect(await resolveIdentity(store, p.actor(SUBJECT))).toBeUndefined();
    expect(await resolveIdentity(store, p.actor(OTHER))).toBe(OTHER);
    expect(await store.get('segments/s/0001.json')).toBeDefined();
    await close();
  });
});
