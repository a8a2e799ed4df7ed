// Which database role capture runs as. It needs only what db/migrations/0004_replication_role.sql
// grants `taskflow_replication` (REPLICATION, SELECT on the captured tables); a superuser would
// let a bug or a leaked credential read and write everything, so outside development mode
// capture refuses to start as one.
import type pg from 'pg';
import { TaskflowError } from '../lib/errors.js';

export interface CaptureRole {
  name: string;
  superuser: boolean;
}

export async function currentRole(db: Pick<pg.Pool, 'query'>): Promise<CaptureRole> {
  const { rows } = await db.query<{ name: string; superuser: boolean }>('SELECT current_user AS name, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user');
  const row = rows[0];
  if (!row) throw new TaskflowError('CAPTURE_ROLE_UNKNOWN', 'cannot read the role capture connects as');
  return row;
}

/** Throws (not retriable) when capture must not run as `role`. */
export function checkCaptureRole(role: CaptureRole, allowSuperuser: boolean): void {
  if (role.superuser && !allowSuperuser) {
    throw new TaskflowError(
      'CAPTURE_SUPERUSER',
      `capture connects as "${role.name}", a superuser: outside development mode (TASKFLOW_ENV=development) it must connect as the replication role taskflow_replication (db/migrations/0004_replication_role.sql): set DATABASE_URL to it`,
    );
  }
}
