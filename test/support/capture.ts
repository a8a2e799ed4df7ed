// Capture in a test process: the settings every test's capture shares (this run's engines and the
// test's own database, stream, tables and slot) and its start up to "streaming from the slot".
import { loadConfig } from '../../capture/config.js';
import { type RunningCapture, startCapture } from '../../capture/main.js';
import type { PutRecordsFn } from '../../capture/producer.js';
import { createLogger, type Logger } from '../../lib/logger.js';
import { captureDatabaseUrl, tableEnv, testStackEnv } from './stack.js';

export interface TestCaptureTarget {
  /** The test database as the application writes to it; capture logs in as the replication role. */
  databaseUrl: string;
  stream: string;
  /** Table key (as createTestTables names them: dlq, checkpoints, leases …) → table name. */
  tables: Record<string, string>;
  slot: string;
}

/** Capture's settings for `target`, acking every 100 ms so tests see the slot advance quickly; `extra` adds or overrides. */
export function testCaptureEnv(target: TestCaptureTarget, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...testStackEnv(),
    ...tableEnv(target.tables),
    DATABASE_URL: captureDatabaseUrl(target.databaseUrl),
    CHANGE_STREAM_NAME: target.stream,
    CAPTURE_SLOT: target.slot,
    CAPTURE_ACK_INTERVAL_MS: '100',
    ...extra,
  };
}

/** Starts capture in this process from `env` and resolves once it streams from its slot. */
export async function startTestCapture(
  env: Record<string, string>,
  logger: Logger = createLogger('capture', process.env.CAPTURE_TEST_LOG ?? 'silent'),
  wrapPut?: (put: PutRecordsFn) => PutRecordsFn,
): Promise<RunningCapture> {
  const capture = await startCapture(loadConfig(env), logger, wrapPut);
  void capture.service.start();
  try {
    await capture.service.ready;
  } catch (err) {
    await capture.close().catch(() => undefined);
    throw err;
  }
  return capture;
}
