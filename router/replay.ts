// The replay API's answer (schemas/CONTRACTS.md "Replay API") from a changelog page: the dense
// range after `after`, or "resync required" when the changelog no longer reaches back to after+1.
import type { ChangelogPage } from './changelog.js';

export type ReplayAnswer =
  | { status: 200; body: { changes: { seq: number; event: unknown }[]; latestSeq: number } }
  | { status: 410; body: { error: 'resync_required'; oldestSeq: number; latestSeq: number } };

export function replayAnswer(page: ChangelogPage, after: number): ReplayAnswer {
  const latestSeq = page.head.seq;
  if (after >= latestSeq) return { status: 200, body: { changes: [], latestSeq } };
  const first = page.entries[0];
  if (!first || first.seq !== after + 1 || page.oldestSeq === null || page.oldestSeq > after + 1) {
    return { status: 410, body: { error: 'resync_required', oldestSeq: page.oldestSeq ?? latestSeq + 1, latestSeq } };
  }
  // Dense by construction; stop at a hole rather than serve one (an item expired mid-range).
  const changes: { seq: number; event: unknown }[] = [];
  for (const e of page.entries) {
    if (e.seq !== after + 1 + changes.length) break;
    changes.push({ seq: e.seq, event: e.event });
  }
  return { status: 200, body: { changes, latestSeq } };
}
