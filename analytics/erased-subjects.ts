// The loader's check of the erased-subjects list (@taskflow/stream erased-subjects.ts): an archive
// object loaded after a subject was erased — a rebuild or a redrive re-reads the archive, a late
// object arrives — has the subject's data blanked before the warehouse sees it, as the stream's
// consumers do. An event the warehouse already holds is not inserted again (event-id dedup) and
// cannot overwrite an erased value (the per-column guard); this covers the rest.
import { gunzipSync, gzipSync } from 'node:zlib';
import { type Envelope, type ErasedSubjects, scrubErased, subjectIdsOf } from '@taskflow/stream';
import type { ArchiveObject } from './warehouse/duckdb.js';

/** The object with the erased subjects' data blanked and events about them alone left out; the object itself when none is erased. */
export async function scrubArchiveObject(o: ArchiveObject, erased: Pick<ErasedSubjects, 'isErased'>): Promise<ArchiveObject> {
  let text: string;
  try {
    text = gunzipSync(o.body).toString('utf8');
  } catch {
    return o; // not GZIP: the quarantine's to judge, and nothing of it loads
  }
  const lines = text.split('\n');
  const envelopes = lines.map((line) => {
    try {
      const e = JSON.parse(line) as unknown;
      return e && typeof e === 'object' && 'data' in e ? (e as Envelope) : undefined;
    } catch {
      return undefined;
    }
  });
  const ids = [...new Set(envelopes.flatMap((e) => (e ? subjectIdsOf(e) : [])))];
  const answers = await Promise.all(ids.map((id) => erased.isErased(id)));
  const gone = new Set(ids.filter((_, i) => answers[i]));
  if (gone.size === 0) return o;
  const out: string[] = [];
  for (const [i, line] of lines.entries()) {
    const e = envelopes[i];
    if (!e) {
      if (line.trim()) out.push(line);
      continue;
    }
    const scrubbed = scrubErased(e, (id) => gone.has(id));
    if (scrubbed) out.push(scrubbed === e ? line : JSON.stringify(scrubbed));
  }
  return { key: o.key, body: gzipSync(out.map((l) => `${l}\n`).join(''), { level: 1 }) };
}
