// Every command's help works and is complete: `--help` on every command and subcommand prints
// its usage and exits 0 (no parseArgs stack trace, no usage error), every setting a service reads
// appears in its help, and each README's settings reference is the one rendered from the
// declaration the service parses.
import { describe, expect, it, jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ARCHIVER_SETTING_LIST, LOADER_SETTING_LIST, loadArchiverConfig, loadLoaderConfig } from '../analytics/config.js';
import { AUDIT_SETTING_LIST, loadConfig as loadAuditConfig } from '../audit/config.js';
import { BROKER_SETTING_LIST, loadConfig as loadBrokerConfig } from '../broker/config.js';
import { CAPTURE_SETTING_LIST, loadConfig as loadCaptureConfig } from '../capture/config.js';
import { GDPR_SETTING_LIST, loadConfig as loadGdprConfig } from '../gdpr/config.js';
import type { AnySetting, Env } from '../lib/config.js';
import { CONSUMER_SETTINGS, loadConsumerConfig } from '@taskflow/stream';
import { ROUTER_SETTING_LIST, loadConfig as loadRouterConfig } from '../router/config.js';
import { NOTIFICATION_SETTING_LIST, loadConfig as loadNotificationsConfig } from '../notifications/config.js';
import { SEARCH_SETTING_LIST, loadConfig as loadSearchConfig } from '../search/config.js';
import { BOARD_SETTING_LIST, loadConfig as loadBoardConfig } from './commands/board.js';
import { commandNames, loadCommand } from './command.js';
import { readReadme, renderReference, SETTINGS_REFERENCES } from './settings-reference.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

async function run(argv: string[]): Promise<{ code: number | void; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = jest.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    const [name, ...rest] = argv;
    const code = await (await loadCommand(name!)).run(rest);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

/** The variables `load` reads from its environment. */
function readsOf(load: (env: Env) => unknown, given: Record<string, string>): string[] {
  const read = new Set<string>();
  const env = new Proxy(given, {
    get(target, key) {
      if (typeof key !== 'string') return undefined;
      read.add(key);
      return target[key];
    },
  });
  load(env);
  return [...read].sort();
}

const names = (settings: readonly AnySetting[]) => settings.map((s) => s.name).sort();

describe('taskflow --help', () => {
  it('every command and subcommand prints its usage and exits 0', async () => {
    const invocations = [];
    for (const name of commandNames()) {
      const command = await loadCommand(name);
      invocations.push([name, '--help'], ...(command.subcommands ?? []).map((sub) => [name, sub, '--help']));
    }
    expect(invocations).toEqual(expect.arrayContaining([['dev', 'token', '--help'], ['schemas', 'check', '--help'], ['dlq', '--help']]));
    for (const argv of invocations) {
      const r = await run(argv);
      expect({ argv, code: r.code, err: r.err }).toEqual({ argv, code: 0, err: '' });
      expect({ argv, out: r.out }).toEqual({ argv, out: expect.stringMatching(/^usage:/) });
    }
  });

  it('works through the real binary: no parseArgs stack trace, and an unknown option is a usage error', () => {
    const taskflow = (...args: string[]) => spawnSync(process.execPath, [join(root, 'bin', 'taskflow.js'), ...args], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    for (const argv of [['--help'], ['dev', 'token', '--help'], ['schemas', 'check', '--help'], ['dlq', '--help']]) {
      const r = taskflow(...argv);
      expect({ argv, status: r.status, stderr: r.stderr }).toEqual({ argv, status: 0, stderr: '' });
    }
    const bad = taskflow('schemas', 'check', '--frobnicate');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^taskflow: Unknown option '--frobnicate'.*see `taskflow schemas --help`/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});

describe('settings: declared once, all in --help, all in the README', () => {
  const services = [
    { command: 'capture', settings: CAPTURE_SETTING_LIST, reads: readsOf(loadCaptureConfig, { DATABASE_URL: 'postgres://127.0.0.1/taskflow', CHANGE_STREAM_NAME: 's' }) },
    { command: 'router', settings: ROUTER_SETTING_LIST, reads: readsOf(loadRouterConfig, { CHANGE_STREAM_NAME: 's', JWT_SECRET: 'x'.repeat(32) }) },
    { command: 'broker', settings: BROKER_SETTING_LIST, reads: readsOf(loadBrokerConfig, { JWT_SECRET: 'x'.repeat(32) }) },
    { command: 'board', settings: BOARD_SETTING_LIST, reads: readsOf(loadBoardConfig, { DATABASE_URL: 'postgres://127.0.0.1/taskflow', MQTT_WS_URL: 'ws://127.0.0.1:1', REPLAY_URL: 'http://127.0.0.1:2' }) },
    { command: 'search', settings: SEARCH_SETTING_LIST, reads: readsOf(loadSearchConfig, { SEARCH_DB_PATH: '/x/search.db', JWT_SECRET: 'x'.repeat(32) }) },
    { command: 'search', settings: SEARCH_SETTING_LIST, reads: readsOf(loadSearchConfig, { SEARCH_ENGINE: 'opensearch', OPENSEARCH_URL: 'http://127.0.0.1:3', JWT_SECRET: 'x'.repeat(32) }) },
    { command: 'notifications', settings: NOTIFICATION_SETTING_LIST, reads: readsOf(loadNotificationsConfig, { JWT_SECRET: 'x'.repeat(32) }) },
    { command: 'audit', settings: AUDIT_SETTING_LIST, reads: readsOf(loadAuditConfig, { S3_DIR: '/x/s3', AUDIT_KEY: 'k'.repeat(32) }) },
    { command: 'gdpr', settings: GDPR_SETTING_LIST, reads: readsOf(loadGdprConfig, { DATABASE_URL: 'postgres://127.0.0.1/taskflow', SUBJECT_KEYS_KMS_KEY_ID: 'alias/taskflow' }) },
    { command: 'analytics', settings: ARCHIVER_SETTING_LIST, reads: readsOf(loadArchiverConfig, { FIREHOSE_DELIVERY_STREAM: 'f' }) },
    { command: 'analytics', settings: LOADER_SETTING_LIST, reads: readsOf(loadLoaderConfig, { ARCHIVE_BUCKET: 'b', S3_DIR: '/x/s3' }) },
  ];

  it.each(services)('$command: every variable its loadConfig reads is declared and appears in `taskflow $command --help`', async ({ command, settings, reads }) => {
    expect(reads.filter((name) => !names(settings).includes(name))).toEqual([]);
    const { out } = await run([command, '--help']);
    const missing = [...new Set([...reads, ...names(settings), 'LOG_LEVEL'])].filter((name) => !new RegExp(`^\\s+${name}\\s`, 'm').test(out));
    expect(missing).toEqual([]);
    for (const s of settings) expect(out).toContain(s.meaning);
  });

  it('capture --help names every compression it accepts', async () => {
    expect((await run(['capture', '--help'])).out).toMatch(/CAPTURE_COMPRESSION\s+none\|gzip\|zstd; default zstd/);
  });

  it('the consumer kit declares every variable it reads', () => {
    expect(readsOf(loadConsumerConfig, {})).toEqual(names(Object.values(CONSUMER_SETTINGS)));
  });

  it.each(SETTINGS_REFERENCES.map((ref) => ({ ...ref })))('$readme: its settings table is rendered from $declaredIn (npm run docs:settings)', (ref) => {
    const readme = readReadme(ref);
    expect(readme).toBe(renderReference(readme, ref));
  });
});
