// The replay API's answer (schemas/CONTRACTS.md "Replay API") from a changelog page: the dense
// range after `after`, or "resync required" when the changelog no longer reaches back to after+1.
// Each change goes out as the changelog holds it: `{ seq, event }`, or a thin entry
// `{ seq, mode: "thin", id, type, time, key, changed? }` (what the live thin message carried),
// whatever this router's own mode: a reader handles both, as a changelog holds both across a switch.
import { type ErasedSubjects, scrubErased, subjectIdsOf } from '@taskflow/stream';
import { type ChangelogEntry, type ChangelogPage, erasedEnvelope, isThinEntry, scrubThin, thinSubjectIds } from './changelog.js';
import type { Envelope } from './event.js';

export type ReplayAnswer =
  | { status: 200; body: { changes: ChangelogEntry[]; latestSeq: number } }
  | { status: 410; body: { error: 'resync_required'; oldestSeq: number; latestSeq: number } };

/**
 * `acceptsThin`: the client reads thin entries (it asked with `forms=thin`). One that does not —
 * an SDK from before thin changelogs — gets the full entries up to the first thin one, and at a
 * thin one a 410 as if nothing were held (`oldestSeq` past `latestSeq`): it resyncs, which it
 * knows how to do, instead of failing on an entry it cannot read.
 */
export function replayAnswer(page: ChangelogPage, after: number, acceptsThin = true): ReplayAnswer {
  const latestSeq = page.head.seq;
  if (after >= latestSeq) return { status: 200, body: { changes: [], latestSeq } };
  const resync = (oldestSeq: number): ReplayAnswer => ({ status: 410, body: { error: 'resync_required', oldestSeq, latestSeq } });
  const first = page.entries[0];
  if (!first || first.seq !== after + 1 || page.oldestSeq === null || page.oldestSeq > after + 1) return resync(page.oldestSeq ?? latestSeq + 1);
  // Dense by construction; stop at a hole rather than serve one (an item expired mid-range).
  const changes: ChangelogEntry[] = [];
  for (const e of page.entries) {
    if (e.seq !== after + 1 + changes.length || (!acceptsThin && isThinEntry(e))) break;
    changes.push(e);
  }
  if (changes.length === 0) return resync(latestSeq + 1);
  return { status: 200, body: { changes, latestSeq } };
}

/**
 * Each replayed change as the browser may see it (replay-server.ts `prepare`): a full one's
 * personal fields decrypted, then blanked where they name an erased subject (decrypted text may
 * @mention one its ciphertext hid from the changelog's purge); a thin one's key values naming an
 * erased subject null (an entry written before the erasure holds their id there).
 */
export function replayPreparer(decrypt: (e: Envelope) => Promise<Envelope>, erased?: Pick<ErasedSubjects, 'isErased'>): (c: ChangelogEntry) => Promise<ChangelogEntry> {
  const erasedOf = async (ids: string[]): Promise<Set<string>> => {
    const answers = erased ? await Promise.all(ids.map((id) => erased.isErased(id))) : [];
    return new Set(ids.filter((_, i) => answers[i]));
  };
  return async (c) => {
    if (isThinEntry(c)) {
      const gone = await erasedOf(thinSubjectIds(c));
      return gone.size === 0 ? c : scrubThin(c, (id) => gone.has(id));
    }
    const plain = await decrypt(c.event);
    const gone = await erasedOf(subjectIdsOf(plain));
    return { seq: c.seq, event: gone.size === 0 ? plain : (scrubErased(plain, (id) => gone.has(id)) ?? erasedEnvelope(plain)) };
  };
}
