// Capture partitioned by workspace (CAPTURE_PARTITIONS = N, CAPTURE_PARTITION = k): N slots, each
// reading a publication whose row filter keeps the workspaces of one hash range, so a workspace is
// read by exactly one instance and keeps its commit order. The filter is evaluated by the server's
// walsender; workspacePartition is the same function in TypeScript (tests, tools, the docs).
//
// Why uuid_hash: a row filter allows only columns, constants, built-in operators and immutable
// built-in functions, and no I/O cast (workspace_id::text is one), so hashtext(workspace_id::text)
// is refused; uuid_hash(uuid) is allowed. `& 2147483647` rather than abs(): abs(-2^31) overflows.
// UPDATE/DELETE filters may name replica-identity columns only: workspace_id is in every captured
// table's identity index (db/migrations/0001). gdpr_erasure_requests has no workspace (an erasure
// concerns a person), so it goes to partition 0 only, unfiltered.
import { GDPR_ERASURE_TABLE } from '../schemas/kinds.js';

export interface Partition {
  /** 0-based, below count. */
  index: number;
  count: number;
}

export const SINGLE_PARTITION: Partition = { index: 0, count: 1 };

/** PostgreSQL's hash_bytes (src/common/hashfn.c, Bob Jenkins' lookup3) as little-endian servers compute it. */
export function pgHashBytes(bytes: Uint8Array): number {
  const rot = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
  const word = (i: number) => (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) >>> 0;
  let len = bytes.length;
  let a = (0x9e3779b9 + len + 3923095) >>> 0;
  let b = a;
  let c = a;
  let i = 0;
  while (len >= 12) {
    a = (a + word(i)) >>> 0;
    b = (b + word(i + 4)) >>> 0;
    c = (c + word(i + 8)) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rot(c, 4)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 6)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 8)) >>> 0; b = (b + a) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rot(c, 16)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 19)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 4)) >>> 0; b = (b + a) >>> 0;
    i += 12;
    len -= 12;
  }
  const byte = (j: number) => bytes[i + j]!;
  // The last 0-11 bytes; the lowest byte of c is left for the length (as in hashfn.c).
  if (len >= 9) c = (c + (len >= 11 ? byte(10) << 24 : 0) + (len >= 10 ? byte(9) << 16 : 0) + (byte(8) << 8)) >>> 0;
  if (len >= 8) b = (b + word(i + 4)) >>> 0;
  else if (len >= 5) b = (b + (len >= 7 ? byte(6) << 16 : 0) + (len >= 6 ? byte(5) << 8 : 0) + byte(4)) >>> 0;
  if (len >= 4) a = (a + word(i)) >>> 0;
  else if (len >= 1) a = (a + (len >= 3 ? byte(2) << 16 : 0) + (len >= 2 ? byte(1) << 8 : 0) + byte(0)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 24)) >>> 0;
  return c;
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** The partition (0 … count-1) whose publication carries `workspaceId`: (uuid_hash(id) & 2^31-1) % count. */
export function workspacePartition(workspaceId: string, count: number): number {
  if (!UUID.test(workspaceId)) throw new Error(`not a uuid: ${workspaceId}`);
  const hash = pgHashBytes(Buffer.from(workspaceId.replace(/-/g, ''), 'hex'));
  return (hash & 0x7fffffff) % count;
}

/** The row filter of partition `p`'s publication for a table with workspace_id (none for a single partition). */
export function partitionRowFilter(p: Partition): string | undefined {
  return p.count === 1 ? undefined : `((uuid_hash(workspace_id) & 2147483647) % ${p.count}) = ${p.index}`;
}

/** Slot or publication name of partition `p` ("taskflow_capture" → "taskflow_capture_p1of4"); a single partition keeps the name. */
export function partitionName(base: string, p: Partition): string {
  return p.count === 1 ? base : `${base}_p${p.index}of${p.count}`;
}

/** The tables of partition `p`'s publication with their row filters: workspace tables filtered, the erasure table in partition 0 only. */
export function partitionTables(p: Partition, workspaceTables: readonly string[]): { table: string; filter?: string }[] {
  const filter = partitionRowFilter(p);
  const tables: { table: string; filter?: string }[] = workspaceTables.map((table) => (filter ? { table, filter } : { table }));
  if (p.index === 0) tables.push({ table: GDPR_ERASURE_TABLE });
  return tables;
}

/**
 * The transaction index an event of partition `p` carries: the i-th change of the transaction this
 * partition reads gets i·count + index, so ids (commit LSN + index) stay unique across partitions
 * when one transaction writes workspaces of two partitions, and keep their order within one.
 */
export function partitionTxIndex(localIndex: number, p: Partition): number {
  return localIndex * p.count + p.index;
}
