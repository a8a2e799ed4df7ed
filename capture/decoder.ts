// The pure core of capture: pgoutput messages (as pg-logical-replication's PgoutputPlugin
// delivers them) in, envelopes out (schemas/CONTRACTS.md). A transaction's events are released
// at its commit, because every event carries the transaction's size, commit LSN and commit time.
//
// - Relation messages may arrive at any time (after ALTER TABLE ADD/DROP COLUMN the server sends
//   a new one before the next row of that table); rows carry their relation, so the decoder
//   always reads a row with the columns it was written with — no restart needed.
// - An unchanged TOASTed column (pgoutput kind 'u') reaches us as an `undefined` value: it is
//   left out of `after` and listed in `omitted`, never reported as null.
// - An update's `changed` lists the columns it changed, from the changed-columns message the
//   table's trigger emitted in the same transaction (changed-columns.ts); without one, every
//   column of `after` (counted in `changedUnknown`).
// - A row without its workspace id cannot be routed: it becomes a dead letter with its reason,
//   keeps its index in the transaction (so the ids of its neighbours do not depend on it) and
//   does not stop the stream.
// - Who did it: the application emits `pg_logical_emit_message(true, 'taskflow.actor', '{"userId":…}')`
//   inside its transaction; pgoutput delivers it with the transaction (option `messages`), and
//   every event of that transaction (row changes and truncates) carries it as `data.source.actor`.
import type { Pgoutput } from 'pg-logical-replication';
import { eventId, formatLsn, parseLsn } from '../lib/event-id.js';
import { SINGLE_PARTITION, type Partition, partitionTxIndex } from './partitions.js';
import { ENTITIES, type EntityName, GDPR_ERASURE_TABLE, GDPR_ERASURE_TYPE, TRUNCATE_TYPE } from '../schemas/kinds.js';
import { schemaId } from '../schemas/schema-id.js';
import { versionForColumns } from '../schemas/versions.js';
import type { ChangeData, ChangeEvent, ChangeSource, EntityChangeEvent, GdprErasureEvent, TruncateEvent } from '../schemas/types.js';
import { CHANGED_COLUMNS_PREFIX, ChangedColumnsIndex, changedOf } from './changed-columns.js';

export type Row = Record<string, unknown>;

/** One envelope, ready to be put on the stream. */
export interface CapturedEvent {
  id: string;
  /** Kinesis partition key: the workspace id ('*' for truncates). */
  partitionKey: string;
  table: string;
  /** 'e': a GDPR erasure request. */
  op: 'c' | 'u' | 'd' | 'r' | 't' | 'e';
  envelope: ChangeEvent;
}

export interface DeadRow {
  reason: 'MISSING_WORKSPACE_ID' | 'UNCAPTURED_TABLE';
  message: string;
  id: string;
  table: string;
  /** What is known of the change (op, row images), as JSON. */
  payload: Record<string, unknown>;
}

export interface CommittedTransaction {
  xid: number;
  /** LSN of the commit record: the ids' position. */
  commitLsn: bigint;
  /** End of the commit record: acknowledging it tells the server the transaction is done. */
  commitEndLsn: bigint;
  commitTime: string;
  /** Number of row changes (txSize), dead letters included. */
  size: number;
  events: CapturedEvent[];
  deadRows: DeadRow[];
  /** Transactional logical decoding messages (snapshot watermarks, the actor), in order; changed-columns messages are consumed here. */
  messages: { prefix: string; content: Uint8Array }[];
  /** Updates without a changed-columns message: their `changed` is every column of `after`. */
  changedUnknown: number;
  /** Why the transaction's actor message was not attached (not JSON, no userId, too large). */
  actorProblem?: string;
}

/** Prefix of the transactional message that names who made a transaction's changes. */
export const ACTOR_MESSAGE_PREFIX = 'taskflow.actor';
/** An actor message larger than this is not attached: it would travel with every event of its transaction. */
export const MAX_ACTOR_BYTES = 2048;

export type Actor = { userId: string } & Record<string, unknown>;

/** The actor a transaction's messages name (the last actor message wins), or why there is none. */
export function actorOf(messages: readonly { prefix: string; content: Uint8Array }[]): { actor?: Actor; problem?: string } {
  const message = messages.findLast((m) => m.prefix === ACTOR_MESSAGE_PREFIX);
  if (!message) return {};
  if (message.content.length > MAX_ACTOR_BYTES) return { problem: `actor message of ${message.content.length} bytes exceeds ${MAX_ACTOR_BYTES}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(message.content).toString('utf8'));
  } catch {
    return { problem: 'actor message is not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { problem: 'actor message is not a JSON object' };
  const userId = (parsed as Record<string, unknown>).userId;
  if (typeof userId !== 'string' || userId === '') return { problem: 'actor message has no userId string' };
  return { actor: parsed as Actor };
}

export type DecoderOutput =
  | { kind: 'transaction'; tx: CommittedTransaction }
  /** A logical decoding message (heartbeat, snapshot watermark): transactional ones come at their commit. */
  | { kind: 'message'; prefix: string; content: Uint8Array; lsn: bigint; transactional: boolean };

export interface DecoderOptions {
  /** CloudEvents `source`, e.g. //taskflow/capture/taskflow. */
  source: string;
  /** data.source.db */
  db: string;
  /** The partition this capture reads (capture/partitions.ts): it spaces the transaction indexes. */
  partition?: Partition;
}

const TABLE_ENTITY = new Map<string, EntityName>((Object.keys(ENTITIES) as EntityName[]).map((e) => [ENTITIES[e].table, e]));
const VERB = { c: 'created', u: 'updated', d: 'deleted', r: 'snapshot' } as const;
/** Every captured table's primary key is `id` (db/migrations); the replica identity adds routing columns. */
const PRIMARY_KEY = 'id';

type RowChange = { op: 'c' | 'u' | 'd'; relation: Pgoutput.MessageRelation; before: Row | null; after: Row | null } | { op: 't'; tables: string[] };

interface OpenTransaction {
  xid: number;
  commitLsn: bigint;
  changes: RowChange[];
  messages: Pgoutput.MessageMessage[];
}

/** The last commit time's millisecond, formatted: transactions committed in one share it. */
let commitMillis = { ms: 0, iso: '1970-01-01T00:00:00.000' };

/** Commit time (µs since the Unix epoch) as RFC 3339 UTC with microseconds. */
export function formatCommitTime(micros: bigint): string {
  const n = Number(micros); // exact: µs since 1970 stay below 2^53 until the year 2255
  const ms = Math.floor(n / 1000);
  if (ms !== commitMillis.ms) commitMillis = { ms, iso: new Date(ms).toISOString().slice(0, -1) }; // …ss.mmm
  return `${commitMillis.iso}${String(n - ms * 1000).padStart(3, '0')}Z`;
}

/**
 * A tuple without unchanged-TOAST placeholders, plus their names. Most rows have none: those are
 * used as they are (the parser made them for us alone), and only a row with a placeholder is copied.
 */
function splitToast(tuple: Row): { row: Row; omitted: string[] } {
  const omitted: string[] = [];
  for (const k in tuple) if (tuple[k] === undefined) omitted.push(k);
  if (omitted.length === 0) return { row: tuple, omitted };
  const row: Row = {};
  for (const k in tuple) if (tuple[k] !== undefined) row[k] = tuple[k];
  return { row, omitted };
}

function definedOnly(tuple: Row | null): Row | null {
  return tuple && splitToast(tuple).row;
}

export function buildEntityEnvelope(
  opts: DecoderOptions,
  entity: EntityName,
  table: string,
  op: 'c' | 'u' | 'd' | 'r',
  rows: { before: Row | null; after: Row | null; omitted?: string[]; changed?: ReadonlySet<string> | undefined },
  /** The version of the entity's schema the table's columns match (versionForColumns). */
  schemaVersion: number,
  /** `target`: a snapshot event's one consumer (schemas/CONTRACTS.md, "Snapshot aimed at one consumer"). */
  position: { commitLsn: bigint; txIndex: number; txSize: number; xid: number; time: string; snapshot: boolean; target?: string },
  actor?: Actor,
): CapturedEvent | { missing: 'workspace' } {
  const row = rows.after ?? rows.before ?? {};
  const workspace = row.workspace_id;
  if (typeof workspace !== 'string' || workspace === '') return { missing: 'workspace' };
  const keyValue = row[PRIMARY_KEY];
  const project = entity === 'project' ? keyValue : row.project_id;
  const id = eventId(position);
  const source: ChangeSource = {
    db: opts.db,
    lsn: formatLsn(position.commitLsn),
    xid: position.xid,
    txIndex: position.txIndex,
    txSize: position.txSize,
    snapshot: position.snapshot,
    ...(actor ? { actor } : {}),
  };
  const data: ChangeData = {
    op,
    table,
    key: { [PRIMARY_KEY]: keyValue as string },
    before: rows.before,
    after: rows.after,
    ...(op === 'u' && rows.after ? { changed: changedOf(Object.keys(rows.after), rows.changed), omitted: rows.omitted ?? [] } : {}),
    source,
  };
  // The row images are the table's columns as the server sent them; the entity's schema
  // describes them, and the validator of every reader checks them.
  const envelope = {
    specversion: '1.0',
    id,
    source: opts.source,
    type: `taskflow.${entity}.${VERB[op]}`,
    time: position.time,
    subject: `${table}/${String(keyValue)}`,
    dataschema: schemaId({ name: ENTITIES[entity].schema, version: schemaVersion }),
    datacontenttype: 'application/json',
    workspaceid: workspace,
    ...(typeof project === 'string' && project !== '' ? { projectid: project } : {}),
    ...(position.target ? { target: position.target } : {}),
    data,
  } as EntityChangeEvent;
  return { id, partitionKey: workspace, table, op, envelope };
}

export class ChangeDecoder {
  private open: OpenTransaction | undefined;
  /** Per relation message (a new one follows every DDL that changes the table's columns). */
  private readonly versions = new WeakMap<Pgoutput.MessageRelation, number>();

  constructor(private readonly opts: DecoderOptions) {}

  /** True between a begin and its commit. */
  get inTransaction(): boolean {
    return this.open !== undefined;
  }

  /** Feeds one pgoutput message; returns what became complete with it. */
  handle(msg: Pgoutput.Message): DecoderOutput | undefined {
    switch (msg.tag) {
      case 'begin':
        if (msg.commitLsn === null) throw new Error('begin without a commit LSN');
        this.open = { xid: msg.xid, commitLsn: parseLsn(msg.commitLsn), changes: [], messages: [] };
        return undefined;
      case 'relation':
      case 'type':
      case 'origin':
        return undefined; // the parser keeps relations; rows carry theirs
      case 'insert':
        this.tx(msg.tag).changes.push({ op: 'c', relation: msg.relation, before: null, after: msg.new });
        return undefined;
      case 'update':
        this.tx(msg.tag).changes.push({ op: 'u', relation: msg.relation, before: msg.key ?? msg.old, after: msg.new });
        return undefined;
      case 'delete':
        this.tx(msg.tag).changes.push({ op: 'd', relation: msg.relation, before: msg.key ?? msg.old, after: null });
        return undefined;
      case 'truncate':
        this.tx(msg.tag).changes.push({ op: 't', tables: msg.relations.map((r) => r.name) });
        return undefined;
      case 'message':
        if (msg.transactional && this.open) {
          // The parser's content is a view into the connection's read buffer, which later data
          // overwrites: a message kept until the commit must be copied.
          this.open.messages.push({ ...msg, content: Uint8Array.from(msg.content) });
          return undefined;
        }
        return { kind: 'message', prefix: msg.prefix, content: msg.content, lsn: msg.messageLsn ? parseLsn(msg.messageLsn) : 0n, transactional: false };
      case 'commit':
        return { kind: 'transaction', tx: this.commit(msg) };
    }
  }

  private tx(tag: string): OpenTransaction {
    if (!this.open) throw new Error(`pgoutput ${tag} outside a transaction`);
    return this.open;
  }

  private commit(msg: Pgoutput.MessageCommit): CommittedTransaction {
    const open = this.tx('commit');
    this.open = undefined;
    const commitLsn = msg.commitLsn ? parseLsn(msg.commitLsn) : open.commitLsn;
    const commitEndLsn = msg.commitEndLsn ? parseLsn(msg.commitEndLsn) : commitLsn;
    const time = formatCommitTime(msg.commitTime as bigint);
    const size = open.changes.length;
    const changedColumns = new ChangedColumnsIndex();
    const messages = open.messages.filter((m) => m.prefix !== CHANGED_COLUMNS_PREFIX || !changedColumns.add(m.content));
    const tx: CommittedTransaction = { xid: open.xid, commitLsn, commitEndLsn, commitTime: time, size, events: [], deadRows: [], messages: messages.map((m) => ({ prefix: m.prefix, content: m.content })), changedUnknown: 0 };
    const { actor, problem } = actorOf(tx.messages);
    if (problem) tx.actorProblem = problem;
    const partition = this.opts.partition ?? SINGLE_PARTITION;
    open.changes.forEach((change, i) => {
      const position = { commitLsn, txIndex: partitionTxIndex(i, partition), txSize: size, xid: open.xid, time, snapshot: false };
      if (change.op === 't') {
        tx.events.push(this.truncateEvent(change.tables, position, actor));
        return;
      }
      const table = change.relation.name;
      const entity = TABLE_ENTITY.get(table);
      const after = change.after ? splitToast(change.after) : undefined;
      const rows = { before: definedOnly(change.before), after: after?.row ?? null, omitted: after?.omitted ?? [] };
      const changed = change.op === 'u' && rows.after ? changedColumns.take(table, String(rows.after[PRIMARY_KEY])) : undefined;
      if (change.op === 'u' && !changed && entity) tx.changedUnknown += 1;
      const id = eventId(position);
      if (table === GDPR_ERASURE_TABLE && change.op === 'c' && rows.after) {
        tx.events.push(this.erasureEvent(rows.after, position));
        return;
      }
      if (!entity) {
        tx.deadRows.push({ reason: 'UNCAPTURED_TABLE', message: `table ${change.relation.schema}.${table} is not a captured entity`, id, table, payload: { op: change.op, ...rows } });
        return;
      }
      const built = buildEntityEnvelope(this.opts, entity, table, change.op, { ...rows, changed }, this.schemaVersion(entity, change.relation), position, actor);
      if ('missing' in built) {
        tx.deadRows.push({ reason: 'MISSING_WORKSPACE_ID', message: `${change.op} on ${table} has no workspace_id`, id, table, payload: { op: change.op, ...rows } });
      } else {
        tx.events.push(built);
      }
    });
    return tx;
  }

  private schemaVersion(entity: EntityName, relation: Pgoutput.MessageRelation): number {
    let version = this.versions.get(relation);
    if (version === undefined) {
      version = versionForColumns(ENTITIES[entity].schema, relation.columns.map((c) => c.name));
      this.versions.set(relation, version);
    }
    return version;
  }

  /** An erasure request's row (db/migrations/0008): one event for every workspace, as a truncate is. */
  private erasureEvent(row: Row, position: { commitLsn: bigint; txIndex: number; time: string }): CapturedEvent {
    const id = eventId(position);
    const envelope: GdprErasureEvent = {
      specversion: '1.0',
      id,
      source: this.opts.source,
      type: GDPR_ERASURE_TYPE,
      time: position.time,
      subject: `users/${String(row.user_id)}`,
      dataschema: schemaId({ name: 'gdpr-erasure', version: 1 }),
      datacontenttype: 'application/json',
      workspaceid: '*',
      data: {
        requestId: String(row.id),
        userId: String(row.user_id),
        requestedAt: String(row.requested_at),
        deadline: String(row.deadline),
        ...(typeof row.reason === 'string' && row.reason !== '' ? { reason: row.reason } : {}),
      },
    };
    return { id, partitionKey: '*', table: GDPR_ERASURE_TABLE, op: 'e', envelope };
  }

  private truncateEvent(tables: string[], position: { commitLsn: bigint; txIndex: number; txSize: number; xid: number; time: string }, actor?: Actor): CapturedEvent {
    const id = eventId(position);
    const table = tables[0] ?? 'unknown';
    const envelope: TruncateEvent = {
      specversion: '1.0',
      id,
      source: this.opts.source,
      type: TRUNCATE_TYPE,
      time: position.time,
      subject: table,
      dataschema: schemaId({ name: 'truncate', version: 1 }),
      datacontenttype: 'application/json',
      workspaceid: '*',
      data: {
        op: 't',
        table,
        tables: [...new Set(tables)] as [string, ...string[]],
        source: { db: this.opts.db, lsn: formatLsn(position.commitLsn), xid: position.xid, txIndex: position.txIndex, txSize: position.txSize, snapshot: false, ...(actor ? { actor } : {}) },
      },
    };
    return {
      id,
      partitionKey: '*',
      table,
      op: 't',
      envelope,
    };
  }
}
