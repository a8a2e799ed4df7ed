// Guards against silently starting over. The capture records, durably and off the database
// (DynamoDB), which slot it reads and the highest LSN it ever confirmed — written BEFORE the
// status update goes to the server, so a healthy slot's confirmed LSN is never above the record.
// At start a slot that is missing while a record exists (it was dropped), or whose confirmed LSN
// is above the record (it was recreated, or advanced by someone else), means events were lost:
// capture refuses to start unless the operator accepts the gap (CAPTURE_ACCEPT_SLOT_GAP=true).
import { type DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { formatLsn, parseLsn } from '../lib/event-id.js';

export interface SlotRecord {
  /** Postgres system identifier + database + slot: which slot this is the history of. */
  key: string;
  /** Highest LSN capture ever confirmed (or the slot's position when it was created/adopted). */
  confirmedLsn: bigint;
  createdLsn: bigint;
  updatedAt: string;
}

export interface SlotRecordStore {
  get(key: string): Promise<SlotRecord | undefined>;
  put(record: SlotRecord): Promise<void>;
}

export type SlotState = { exists: false } | { exists: true; confirmedLsn: bigint };

export type SlotDecision =
  | { action: 'create'; firstStart: boolean; message: string }
  | { action: 'resume'; message: string }
  | { action: 'refuse'; message: string };

/** What to do with the slot at start: pure, tested on its own. */
export function decideSlot(slot: SlotState, record: SlotRecord | undefined, acceptGap: boolean): SlotDecision {
  if (!slot.exists) {
    if (!record) return { action: 'create', firstStart: true, message: 'no slot and no record of one: first start' };
    const lost = `the slot recorded at ${formatLsn(record.confirmedLsn)} no longer exists; changes committed since then are lost from the stream`;
    return acceptGap
      ? { action: 'create', firstStart: false, message: `${lost} (accepted by CAPTURE_ACCEPT_SLOT_GAP)` }
      : { action: 'refuse', message: `${lost}. Set CAPTURE_ACCEPT_SLOT_GAP=true to start with a new slot (and re-snapshot).` };
  }
  if (!record) return { action: 'resume', message: `adopting existing slot at ${formatLsn(slot.confirmedLsn)} (no record of it yet)` };
  if (slot.confirmedLsn > record.confirmedLsn) {
    const gap = `the slot's confirmed position ${formatLsn(slot.confirmedLsn)} is past the highest one capture confirmed (${formatLsn(record.confirmedLsn)}): it was recreated or advanced outside capture, changes in between are lost`;
    return acceptGap
      ? { action: 'resume', message: `${gap} (accepted by CAPTURE_ACCEPT_SLOT_GAP)` }
      : { action: 'refuse', message: `${gap}. Set CAPTURE_ACCEPT_SLOT_GAP=true to continue from it (and re-snapshot).` };
  }
  return { action: 'resume', message: `resuming slot from ${formatLsn(slot.confirmedLsn)}` };
}

/** The backend streaming from the slot right now, if any (pg_replication_slots.active_pid). */
export interface SlotHolder {
  pid: number;
  /** Its application_name from pg_stat_activity ('' when unknown). */
  applicationName: string;
}

export type SlotHolderAction = { action: 'start' } | { action: 'terminate'; pid: number } | { action: 'wait'; holder: string };

/** The application_name of an instance's replication connection (config.ts keeps ids short and ASCII, as Postgres needs). */
export function replicationApplicationName(instanceId: string): string {
  return `taskflow-capture/${instanceId}`;
}

/**
 * Who may read the slot. A slot has one reader at a time. Held by a walsender carrying this
 * instance's own name, the reader is this instance's previous process, dead (instance ids are
 * unique among live processes) while its walsender has not noticed yet (up to
 * wal_sender_timeout when the host went away): terminate it and start at once. Held by anyone
 * else — the active peer of an active/standby pair — wait, and take over when it lets go.
 */
export function slotHolderAction(holder: SlotHolder | undefined, ownApplicationName: string): SlotHolderAction {
  if (!holder) return { action: 'start' };
  if (holder.applicationName === ownApplicationName) return { action: 'terminate', pid: holder.pid };
  return { action: 'wait', holder: holder.applicationName || `pid ${holder.pid}` };
}

export class MemorySlotRecordStore implements SlotRecordStore {
  readonly records = new Map<string, SlotRecord>();
  get(key: string): Promise<SlotRecord | undefined> {
    return Promise.resolve(this.records.get(key));
  }
  put(record: SlotRecord): Promise<void> {
    this.records.set(record.key, { ...record });
    return Promise.resolve();
  }
}

/** Items `capture-slot/<key>` in the checkpoints table (HASH key `id`). */
export class DynamoSlotRecordStore implements SlotRecordStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
  ) {}

  async get(key: string): Promise<SlotRecord | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key: { id: { S: `capture-slot/${key}` } }, ConsistentRead: true }));
    const item = out.Item;
    if (!item) return undefined;
    return { key, confirmedLsn: parseLsn(item.confirmedLsn?.S ?? '0/0'), createdLsn: parseLsn(item.createdLsn?.S ?? '0/0'), updatedAt: item.updatedAt?.S ?? '' };
  }

  async put(record: SlotRecord): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.table,
        Item: {
          id: { S: `capture-slot/${record.key}` },
          confirmedLsn: { S: formatLsn(record.confirmedLsn) },
          createdLsn: { S: formatLsn(record.createdLsn) },
          updatedAt: { S: record.updatedAt },
        },
      }),
    );
  }
}
