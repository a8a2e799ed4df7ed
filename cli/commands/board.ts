// `taskflow board`: the live demo board (a page + a small read/write API over the source
// Postgres). `npm start` runs it; open the URL it prints, in two windows to see edits cross.
//
// Env: DATABASE_URL, MQTT_WS_URL, REPLAY_URL, BOARD_PORT (default 18088), JWT_* (lib/jwt.ts).
import pg from 'pg';
import { type Env, int, str, url } from '../../lib/config.js';
import { loadJwtConfig, signDevToken } from '../../lib/jwt.js';
import { createLogger } from '../../lib/logger.js';
import { TaskflowError } from '../../lib/errors.js';
import { DEMO } from '../../db/seed.js';
import { demoSessions, startBoardServer } from '../../clients/demo-board/server.js';
import type { Command } from '../main.js';

export interface BoardConfig {
  databaseUrl: string;
  mqttWsUrl: string;
  replayUrl: string;
  port: number;
}

export function loadConfig(env: Env): BoardConfig {
  return {
    databaseUrl: str(env, 'DATABASE_URL'),
    mqttWsUrl: url(env, 'MQTT_WS_URL'),
    replayUrl: url(env, 'REPLAY_URL'),
    port: int(env, 'BOARD_PORT', 18088, { min: 0, max: 65535 }),
  };
}

export const command: Command = {
  summary: 'serve the live demo board (page + read/write API) for the demo project',
  async run() {
    const config = loadConfig(process.env);
    const jwt = loadJwtConfig(process.env);
    if (jwt.kind !== 'hs256') throw new TaskflowError('BOARD_NEEDS_DEV_SECRET', 'the demo board signs dev tokens: unset JWT_JWKS_URL');
    const logger = createLogger('board');
    const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 4 });
    const board = await startBoardServer({
      pool,
      port: config.port,
      logger,
      session: demoSessions({
        users: DEMO.users,
        workspaceId: DEMO.workspaceId,
        projectId: DEMO.projectId,
        mqttUrl: config.mqttWsUrl,
        replayUrl: config.replayUrl,
        sign: (userId) => signDevToken(jwt.secret, userId, { issuer: jwt.issuer, audience: jwt.audience, ttlSeconds: 3600 }),
      }),
    });
    logger.info({ url: board.url }, 'demo board listening');
    console.log(`demo board: ${board.url}`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await board.close();
    await pool.end();
  },
};
