// Capture runs with least privilege: the migration's replication role may stream changes and
// snapshot the captured tables, and nothing else; a superuser is refused outside development.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { checkCaptureRole, currentRole } from '../../capture/db-role.js';
import { loadConfig } from '../../capture/config.js';
import { startCapture } from '../../capture/main.js';
import { REPLICATION_ROLE } from '../../db/roles.js';
import { silentLogger } from '../../lib/logger.js';
import { captureDatabaseUrl, createTestDatabase, createTestStream, createTestTables, uniqueName } from '../support/stack.js';
import { startTestCapture, testCaptureEnv } from '../support/capture.js';

let dbUrl: string;
let asRole: pg.Client;

beforeAll(async () => {
  dbUrl = await createTestDatabase('repl_role');
  asRole = new pg.Client({ connectionString: captureDatabaseUrl(dbUrl) });
  await asRole.connect();
});

afterAll(async () => {
  await asRole?.end();
  const admin = new pg.Client({ connectionString: dbUrl });
  await admin.connect();
  await admin.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND active = false").catch(() => undefined);
  await admin.end();
});

async function refused(sql: string): Promise<string> {
  const err = await asRole.query(sql).then(() => undefined, (e: unknown) => e as { code?: string; message: string });
  return err ? `${err.code}: ${err.message}` : 'allowed';
}

describe('taskflow_replication (db/migrations/0004_replication_role.sql)', () => {
  it('is a replication role, not a superuser, and can do what capture needs', async () => {
    expect(await currentRole(asRole)).toEqual({ name: REPLICATION_ROLE, superuser: false });
    const { rows } = await asRole.query<{ rolreplication: boolean; rolcreaterole: boolean; rolcreatedb: boolean; rolbypassrls: boolean }>('SELECT rolreplication, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = current_user');
    expect(rows[0]).toEqual({ rolreplication: true, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false });
    for (const table of ['projects', 'memberships', 'tasks', 'comments']) await asRole.query(`SELECT * FROM ${table} LIMIT 1`);
    await asRole.query("SELECT pg_logical_emit_message(false, 'taskflow.capture.heartbeat', '')");
    await asRole.query('SELECT system_identifier FROM pg_control_system()');
    expect((await asRole.query("SELECT pubname FROM pg_publication WHERE pubname = 'taskflow_capture'")).rowCount).toBe(1);
  });

  it('may not write, read other tables or change the schema', async () => {
    expect(await refused("UPDATE tasks SET title = 'x'")).toMatch(/^42501/);
    expect(await refused("DELETE FROM comments")).toMatch(/^42501/);
    expect(await refused("INSERT INTO memberships (id, workspace_id, user_id, role) VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'owner')")).toMatch(/^42501/);
    expect(await refused('SELECT * FROM users')).toMatch(/^42501/);
    expect(await refused('SELECT * FROM workspaces')).toMatch(/^42501/);
    expect(await refused('SELECT * FROM schema_migrations')).toMatch(/^42501/);
    expect(await refused('CREATE TABLE stolen (x int)')).toMatch(/^42501/);
    expect(await refused('DROP TABLE tasks')).toMatch(/^42501/);
    expect(await refused('CREATE PUBLICATION everything FOR ALL TABLES')).toMatch(/^42501/);
    expect(await refused("CREATE ROLE intruder SUPERUSER")).toMatch(/^42501/);
  });
});

describe('capture and its role', () => {
  it('streams as the replication role (slot creation and all)', async () => {
    const [stream, tables] = await Promise.all([createTestStream('repl-role'), createTestTables('repl-role', ['dlq', 'checkpoints'])]);
    const capture = await startTestCapture(testCaptureEnv({ databaseUrl: dbUrl, stream, tables, slot: uniqueName('repl_role') }), silentLogger);
    await capture.close();
  });

  it('refuses a superuser outside development mode, naming the role to use', async () => {
    const [stream, tables] = await Promise.all([createTestStream('repl-super'), createTestTables('repl-super', ['dlq', 'checkpoints'])]);
    // As the superuser, not the replication role testCaptureEnv would log in as.
    const env = { ...testCaptureEnv({ databaseUrl: dbUrl, stream, tables, slot: uniqueName('repl_super') }), DATABASE_URL: dbUrl };
    const capture = await startCapture(loadConfig(env), silentLogger);
    try {
      await expect(capture.service.start()).rejects.toThrow(/capture connects as "postgres", a superuser: outside development mode .*taskflow_replication/);
    } finally {
      await capture.close();
    }
    expect(() => checkCaptureRole({ name: 'postgres', superuser: true }, loadConfig({ ...env, TASKFLOW_ENV: 'development' }).allowSuperuser)).not.toThrow();
  });
});
