// The history checker: ground truth of what the source database committed, in commit order, read
// through a second, independent logical replication slot with Postgres' built-in test_decoding
// plugin (not pgoutput, which the capture service uses), and a pure comparison of what a reader
// saw against it (lost, duplicated, out of order per workspace and per project).
//
// Commit LSN (measured on Postgres 17, see test/integration/history.test.ts): event ids use
// pgoutput's Commit message `commitLsn`, which is the START of the transaction's commit WAL record
// (the same value as Begin's final_lsn). test_decoding's COMMIT row in pg_logical_slot_*_changes
// carries the END of that record instead (its commit callback reports txn->end_lsn), and the
// commit record's length varies (46 bytes … kilobytes with invalidations), so it cannot be
// derived arithmetically. The recorder reads the commit records' start LSNs from the WAL itself
// with pg_walinspect (pg_get_wal_records_info: end_lsn = test_decoding's lsn → start_lsn).
// That is why the recorder peeks, resolves, and only then advances the slot: the WAL it inspects
// must still be retained.
import pg from 'pg';
import { CAPTURED_TABLES } from '../../capture/slot-setup.js';
import { eventId, formatLsn, parseLsn } from '../../lib/event-id.js';

// The tables the capture publishes; txIndex counts changes to these tables only.
export { CAPTURED_TABLES } from '../../capture/slot-setup.js';

export type HistoryOp = 'c' | 'u' | 'd' | 't';

export interface HistoryEvent {
  /** lib/event-id.ts eventId({ commitLsn, txIndex }). */
  id: string;
  commitLsn: bigint;
  /** 0-based index of the row change among its transaction's changes to the captured tables. */
  txIndex: number;
  xid: string;
  table: string;
  op: HistoryOp;
  /** '*' for a truncate (it affects every workspace). */
  workspaceId: string;
  projectId?: string;
  /** Primary key columns (every captured table's primary key is `id`); {} for a truncate. */
  key: Record<string, string>;
}

// ---- parsing test_decoding's text ------------------------------------------------------------

/** One column of a test_decoding tuple: value null for SQL NULL, undefined for unchanged TOAST. */
export type DecodedTuple = Record<string, string | null | undefined>;

export interface DecodedChange {
  table: string;
  tables: string[];
  op: HistoryOp;
  /** Old key (UPDATE that changed the identity) or the identity of a DELETE. */
  oldKey?: DecodedTuple;
  newTuple?: DecodedTuple;
}

export type DecodedRow = { kind: 'begin'; xid: string } | { kind: 'commit'; xid: string } | { kind: 'change'; change: DecodedChange } | { kind: 'other' };

const OPS: Record<string, HistoryOp> = { INSERT: 'c', UPDATE: 'u', DELETE: 'd', TRUNCATE: 't' };

/** Parses one `data` line of test_decoding (with include-xids). */
export function parseTestDecodingLine(data: string): DecodedRow {
  let m = /^BEGIN (\d+)$/.exec(data);
  if (m) return { kind: 'begin', xid: m[1]! };
  m = /^COMMIT (\d+)(?: \(at .*\))?$/.exec(data);
  if (m) return { kind: 'commit', xid: m[1]! };
  if (!data.startsWith('table ')) return { kind: 'other' }; // e.g. logical decoding messages
  const head = /^table (.+?): (INSERT|UPDATE|DELETE|TRUNCATE):(?: |$)/.exec(data);
  if (!head) throw new Error(`unparsable test_decoding line: ${data.slice(0, 200)}`);
  const tables = head[1]!.split(', ').map(unqualify);
  const op = OPS[head[2]!]!;
  const change: DecodedChange = { table: tables[0]!, tables, op };
  if (op === 't') return { kind: 'change', change };
  const rest = data.slice(head[0].length);
  if (rest.startsWith('(no-tuple-data)')) return { kind: 'change', change };
  const { oldKey, tuple } = parseTuples(rest);
  if (op === 'd') change.oldKey = tuple;
  else {
    change.newTuple = tuple;
    if (oldKey) change.oldKey = oldKey;
  }
  return { kind: 'change', change };
}

/** `public.tasks` or `public."Tasks"` → `tasks` / `Tasks`. */
function unqualify(name: string): string {
  const last = /(?:^|\.)("(?:[^"]|"")*"|[^.]+)$/.exec(name)?.[1] ?? name;
  return last.startsWith('"') ? last.slice(1, -1).replace(/""/g, '"') : last;
}

/** `col[type]:value ...`, optionally `old-key: ... new-tuple: ...`. */
function parseTuples(text: string): { oldKey?: DecodedTuple; tuple: DecodedTuple } {
  let i = 0;
  let current: DecodedTuple = {};
  let oldKey: DecodedTuple | undefined;
  while (i < text.length) {
    if (text[i] === ' ') {
      i++;
      continue;
    }
    if (text.startsWith('old-key: ', i)) {
      i += 'old-key: '.length;
      continue;
    }
    if (text.startsWith('new-tuple: ', i)) {
      oldKey = current;
      current = {};
      i += 'new-tuple: '.length;
      continue;
    }
    let name: string;
    if (text[i] === '"') {
      let j = i + 1;
      while (j < text.length && !(text[j] === '"' && text[j + 1] !== '"')) j += text[j] === '"' ? 2 : 1;
      name = text.slice(i + 1, j).replace(/""/g, '"');
      i = j + 1;
    } else {
      const j = text.indexOf('[', i);
      name = text.slice(i, j);
      i = j;
    }
    if (text[i] !== '[') throw new Error(`test_decoding tuple: expected [type] after ${name} in ${text.slice(0, 200)}`);
    const typeEnd = text.indexOf(']:', i);
    if (typeEnd < 0) throw new Error(`test_decoding tuple: unterminated type after ${name}`);
    i = typeEnd + 2;
    if (text[i] === "'") {
      let j = i + 1;
      let value = '';
      for (;;) {
        const q = text.indexOf("'", j);
        if (q < 0) throw new Error(`test_decoding tuple: unterminated string in ${name}`);
        value += text.slice(j, q);
        if (text[q + 1] === "'") {
          value += "'";
          j = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      current[name] = value;
    } else {
      const end = text.indexOf(' ', i);
      const raw = text.slice(i, end < 0 ? text.length : end);
      i = end < 0 ? text.length : end;
      current[name] = raw === 'null' ? null : raw === 'unchanged-toast-datum' ? undefined : raw;
    }
  }
  return oldKey ? { oldKey, tuple: current } : { tuple: current };
}

/** Routing of a decoded change, as the envelope carries it (CONTRACTS.md). */
export function routeOf(change: DecodedChange): { workspaceId: string; projectId?: string; key: Record<string, string> } {
  if (change.op === 't') return { workspaceId: '*', key: {} };
  const row = change.op === 'd' ? change.oldKey : change.newTuple;
  const id = row?.id ?? change.oldKey?.id;
  const workspaceId = row?.workspace_id;
  if (!id || !workspaceId) throw new Error(`change to ${change.table} carries no id/workspace_id (replica identity?)`);
  const projectId = change.table === 'projects' ? id : (row.project_id ?? undefined);
  return { workspaceId, ...(projectId ? { projectId } : {}), key: { id } };
}

export interface RawSlotRow {
  lsn: string;
  xid: string;
  data: string;
}

/**
 * Turns peeked test_decoding rows into history events. `commitLsnOf` maps a COMMIT row's lsn
 * (end of the commit record) to the commit LSN pgoutput reports. Changes to tables outside
 * `tables` are skipped and do not count towards txIndex.
 */
export function eventsFromSlotRows(rows: readonly RawSlotRow[], commitLsnOf: (commitEndLsn: bigint) => bigint, tables: readonly string[] = CAPTURED_TABLES): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  let pending: { xid: string; changes: DecodedChange[] } | undefined;
  for (const row of rows) {
    const parsed = parseTestDecodingLine(row.data);
    if (parsed.kind === 'begin') pending = { xid: parsed.xid, changes: [] };
    else if (parsed.kind === 'change') {
      if (!pending) throw new Error('test_decoding change outside a transaction');
      const captured = parsed.change.tables.filter((t) => tables.includes(t));
      // A TRUNCATE may name uncaptured tables too (CASCADE); pgoutput sends only the published ones.
      if (captured.length > 0) pending.changes.push({ ...parsed.change, table: captured[0]!, tables: captured });
    } else if (parsed.kind === 'commit') {
      if (!pending || pending.xid !== parsed.xid) throw new Error(`test_decoding COMMIT ${parsed.xid} without its BEGIN`);
      const commitLsn = commitLsnOf(parseLsn(row.lsn));
      pending.changes.forEach((change, txIndex) => {
        out.push({ id: eventId({ commitLsn, txIndex }), commitLsn, txIndex, xid: parsed.xid, table: change.table, op: change.op, ...routeOf(change) });
      });
      pending = undefined;
    }
  }
  return out;
}

// ---- the recorder ----------------------------------------------------------------------------

export interface HistoryRecorder {
  readonly slotName: string;
  /** Every committed change to the captured tables since the recorder started, in commit order. */
  collect(): Promise<HistoryEvent[]>;
  /** Drops the slot (and closes the connection). */
  stop(): Promise<void>;
}

/**
 * Creates a test_decoding slot now, so every transaction committed from here on is recorded.
 * Needs a superuser (or pg_read_server_files for pg_walinspect) on a wal_level=logical server.
 */
export async function startHistoryRecorder(databaseUrl: string, options: { slotName: string; tables?: readonly string[] }): Promise<HistoryRecorder> {
  const { slotName } = options;
  const tables = options.tables ?? CAPTURED_TABLES;
  const client = new pg.Client({ connectionString: databaseUrl, application_name: `taskflow-history-${slotName}` });
  await client.connect();
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
  } catch (err) {
    // Two recorders starting at once in one database race on the extension; the loser finds it made.
    if ((err as { code?: string }).code !== '23505') throw err;
  }
  await client.query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", [slotName]);
  const events: HistoryEvent[] = [];
  let stopped = false;

  async function collect(): Promise<HistoryEvent[]> {
    if (stopped) throw new Error(`history recorder ${slotName} is stopped`);
    const { rows } = await client.query<RawSlotRow>(
      "SELECT lsn::text AS lsn, xid::text AS xid, data FROM pg_logical_slot_peek_changes($1, NULL, NULL, 'include-xids', '1', 'skip-empty-xacts', '1')",
      [slotName],
    );
    const commits = rows.filter((r) => r.data.startsWith('COMMIT '));
    const lastCommit = commits[commits.length - 1];
    if (!lastCommit) return [...events];
    const from = rows.reduce((min, r) => (parseLsn(r.lsn) < min ? parseLsn(r.lsn) : min), parseLsn(rows[0]!.lsn));
    const records = await client.query<{ start_lsn: string; end_lsn: string }>(
      "SELECT start_lsn::text AS start_lsn, end_lsn::text AS end_lsn FROM pg_get_wal_records_info($1, $2) WHERE resource_manager = 'Transaction' AND record_type IN ('COMMIT', 'COMMIT_PREPARED')",
      [formatLsn(from), lastCommit.lsn],
    );
    const startByEnd = new Map(records.rows.map((r) => [parseLsn(r.end_lsn), parseLsn(r.start_lsn)]));
    const lastIncluded = rows.lastIndexOf(lastCommit);
    events.push(
      ...eventsFromSlotRows(
        rows.slice(0, lastIncluded + 1),
        (end) => {
          const start = startByEnd.get(end);
          if (start === undefined) throw new Error(`no commit WAL record ends at ${formatLsn(end)}`);
          return start;
        },
        tables,
      ),
    );
    await client.query('SELECT pg_replication_slot_advance($1, $2)', [slotName, lastCommit.lsn]);
    return [...events];
  }

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    try {
      await client.query('SELECT pg_drop_replication_slot($1)', [slotName]);
    } finally {
      await client.end();
    }
  }

  return { slotName, collect, stop };
}

// ---- comparing what a reader saw with the truth ---------------------------------------------

/** The envelope fields the comparison needs (CloudEvents attribute names). */
export interface SeenEvent {
  id: string;
  workspaceid: string;
  projectid?: string | undefined;
}

export interface HistoryComparison {
  /** Committed but never seen, in commit order. */
  lost: string[];
  /** Seen more than once: how many times in all, in order of first sighting. */
  duplicated: { id: string; times: number }[];
  /** Seen (first time) after an event of the same workspace that committed later. */
  outOfOrderByWorkspace: string[];
  /** Seen (first time) after an event of the same project that committed later. */
  outOfOrderByProject: string[];
  /** Seen but never committed (each id once). */
  unexpected: string[];
  /** Seen with a workspaceid/projectid other than the committed row's. */
  misrouted: string[];
}

/**
 * Compares the events a reader saw, in the order it saw them, with the truth in commit order.
 * Order is judged as a reader keeping the highest position per workspace (or project) would:
 * an event arriving below that high-water mark is out of order. Repeats are duplicates only.
 */
export function compareHistory(truth: readonly Pick<HistoryEvent, 'id' | 'workspaceId' | 'projectId'>[], seen: readonly SeenEvent[]): HistoryComparison {
  const position = new Map<string, number>();
  truth.forEach((e, i) => position.set(e.id, i));
  const times = new Map<string, number>();
  const unexpected: string[] = [];
  const misrouted: string[] = [];
  const outOfOrderByWorkspace: string[] = [];
  const outOfOrderByProject: string[] = [];
  const highByWorkspace = new Map<string, number>();
  const highByProject = new Map<string, number>();
  for (const s of seen) {
    const n = (times.get(s.id) ?? 0) + 1;
    times.set(s.id, n);
    if (n > 1) continue;
    const pos = position.get(s.id);
    if (pos === undefined) {
      unexpected.push(s.id);
      continue;
    }
    const t = truth[pos]!;
    if (s.workspaceid !== t.workspaceId || (s.projectid ?? undefined) !== (t.projectId ?? undefined)) misrouted.push(s.id);
    const wsHigh = highByWorkspace.get(t.workspaceId) ?? -1;
    if (pos < wsHigh) outOfOrderByWorkspace.push(s.id);
    else highByWorkspace.set(t.workspaceId, pos);
    if (t.projectId !== undefined) {
      const pHigh = highByProject.get(t.projectId) ?? -1;
      if (pos < pHigh) outOfOrderByProject.push(s.id);
      else highByProject.set(t.projectId, pos);
    }
  }
  return {
    lost: truth.filter((e) => !times.has(e.id)).map((e) => e.id),
    duplicated: [...times].filter(([id, n]) => n > 1 && position.has(id)).map(([id, n]) => ({ id, times: n })),
    outOfOrderByWorkspace,
    outOfOrderByProject,
    unexpected,
    misrouted,
  };
}
