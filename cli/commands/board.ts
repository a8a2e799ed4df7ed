// `taskflow board`: the live demo board (a page + a small read/write API over the source
// Postgres). `npm start` runs it; open the URL it prints, in two windows to see edits cross.
//
// Settings: BOARD_SETTINGS below, JWT_SETTINGS (lib/jwt.ts) and LOG_LEVEL.
import pg from 'pg';
import { type Env, customSetting, intSetting, optionalSetting, readSettings, settingsHelp, stringSetting, uniqueSettings, url, urlSetting } from '../../lib/config.js';
import { DEV_MODE_SETTINGS, requireDevelopment } from '../../lib/dev-mode.js';
import { JWT_SETTINGS, loadJwtConfig, signDevToken } from '../../lib/jwt.js';
import { createLogger, LOG_SETTINGS } from '../../lib/logger.js';
import { ConfigError, TaskflowError } from '../../lib/errors.js';
import { DEMO } from '../../db/seed.js';
import type { MetricsSource } from '../../clients/demo-board/health.js';
import { demoSessions, startBoardServer } from '../../clients/demo-board/server.js';
import type { Command } from '../command.js';

export interface BoardConfig {
  databaseUrl: string;
  mqttWsUrl: string;
  replayUrl: string;
  searchUrl?: string;
  analyticsUrl?: string;
  notificationsUrl?: string;
  port: number;
  healthSources: MetricsSource[];
}

/**
 * name=url pairs, comma-separated; unset: every <NAME>_METRICS_URL in the environment (taskflow
 * dev hands each service the URL of every endpoint, e.g. ROUTER_METRICS_URL), /metrics appended.
 */
export function healthSources(env: Env): MetricsSource[] {
  const raw = env.BOARD_HEALTH_SOURCES;
  if (raw) {
    return raw.split(',').map((pair) => {
      const m = /^\s*([\w-]+)=(\S+)\s*$/.exec(pair);
      if (!m || !URL.canParse(m[2]!)) throw new ConfigError('BOARD_HEALTH_SOURCES', `must be name=url pairs separated by commas, got "${pair}"`);
      return { name: m[1]!, url: m[2]! };
    });
  }
  return Object.entries(env)
    .flatMap(([k, v]) => {
      const m = /^([A-Z0-9_]+)_METRICS_URL$/.exec(k);
      return m && v ? [{ name: m[1]!.toLowerCase().replace(/_/g, '-'), url: `${v.replace(/\/$/, '')}/metrics` }] : [];
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

export const BOARD_SETTINGS = {
  databaseUrl: stringSetting({ name: 'DATABASE_URL', meaning: 'The source database the board reads and writes.' }),
  mqttWsUrl: urlSetting({ name: 'MQTT_WS_URL', meaning: 'MQTT over WebSocket URL the page connects to.' }),
  replayUrl: urlSetting({ name: 'REPLAY_URL', meaning: "The router's replay API." }),
  searchUrl: optionalSetting({ name: 'SEARCH_URL', type: 'URL', default: 'none: no search box', meaning: 'The search API the search box queries.' }),
  analyticsUrl: optionalSetting({ name: 'ANALYTICS_URL', type: 'URL', default: 'none: the analytics page says so', meaning: 'The analytics API the analytics page (/analytics) reads.' }),
  notificationsUrl: customSetting({
    name: 'NOTIFICATIONS_URL',
    type: 'URL',
    default: 'none: no bell',
    meaning: "The notifications service's inbox API the bell (unread count, latest notifications) reads.",
    read: (env) => (env.NOTIFICATIONS_URL ? url(env, 'NOTIFICATIONS_URL') : undefined),
  }),
  port: intSetting({ name: 'BOARD_PORT', default: 18088, min: 0, max: 65535, meaning: 'Port of the page and its API.' }),
  healthSources: customSetting({
    name: 'BOARD_HEALTH_SOURCES',
    type: 'name=URL,...',
    default: 'every <NAME>_METRICS_URL (taskflow dev sets them)',
    meaning: "The services' /metrics the pipeline health page (/health) charts.",
    read: healthSources,
  }),
};

export const BOARD_SETTING_LIST = uniqueSettings(BOARD_SETTINGS, JWT_SETTINGS, DEV_MODE_SETTINGS, LOG_SETTINGS);

const usage = `usage: taskflow board
  Serves the live demo board for the demo project (npm start runs it).
Settings (environment):
${settingsHelp(BOARD_SETTING_LIST)}`;

export function loadConfig(env: Env): BoardConfig {
  return readSettings(env, BOARD_SETTINGS);
}

export const command: Command = {
  summary: 'serve the live demo board (page + read/write API) for the demo project',
  async run(argv) {
    if (argv.length > 0) {
      const help = argv[0] === '--help' || argv[0] === 'help';
      (help ? console.log : console.error)(usage);
      return help ? 0 : 2;
    }
    requireDevelopment(process.env, "the demo board (its /api/session hands a demo workspace owner's token to anyone who asks)");
    const config = loadConfig(process.env);
    const jwt = loadJwtConfig(process.env);
    if (jwt.kind !== 'hs256') throw new TaskflowError('BOARD_NEEDS_DEV_SECRET', 'the demo board signs dev tokens: unset JWT_JWKS_URL');
    const logger = createLogger('board');
    const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 4 });
    const board = await startBoardServer({
      pool,
      port: config.port,
      logger,
      healthSources: config.healthSources,
      session: demoSessions({
        users: DEMO.users,
        workspaceId: DEMO.workspaceId,
        projectId: DEMO.projectId,
        mqttUrl: config.mqttWsUrl,
        replayUrl: config.replayUrl,
        ...(config.searchUrl ? { searchUrl: config.searchUrl } : {}),
        ...(config.analyticsUrl ? { analyticsUrl: config.analyticsUrl } : {}),
        ...(config.notificationsUrl ? { notificationsUrl: config.notificationsUrl } : {}),
        sign: (userId) => signDevToken(jwt.secret, userId, { issuer: jwt.issuer, audience: jwt.audience, ttlSeconds: 3600 }),
        env: process.env,
      }),
    });
    logger.warn({ url: board.url }, 'demo board listening: development only, /api/session gives anyone a demo user\'s token');
    console.log(`demo board: ${board.url} (analytics: ${board.url}analytics, pipeline health: ${board.url}health, from ${config.healthSources.map((s) => s.name).join(', ') || 'no service metrics'})`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await board.close();
    await pool.end();
  },
};
