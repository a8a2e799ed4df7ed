// A throw-away PostgreSQL with the migrated `taskflow` database, for scripts that record or
// measure on a server of their own (bench:capture-core, bench:changed-columns, fixtures:pgoutput).
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { migrate } from '../../db/migrate.js';
import { startPostgres } from '../../infra/local/postgres.js';
import { freePort } from '../../infra/local/processes.js';

/** Runs `use` with the database's URL, then stops the server and removes its directory. */
export async function withThrowawayPostgres<T>(name: string, use: (url: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  chmodSync(dir, 0o755); // Postgres runs as the postgres OS user when we are root
  const server = await startPostgres({ pgdata: join(dir, 'pg'), port: await freePort(), ephemeral: true, logFile: join(dir, 'pg.log') });
  try {
    const admin = new pg.Client(server.url('postgres'));
    await admin.connect();
    await admin.query('CREATE DATABASE taskflow');
    await admin.end();
    const url = server.url('taskflow');
    await migrate(url);
    return await use(url);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
