import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { createLogger, logPseudonym, redactForLog } from './logger.js';

const MARK = 'ZQXMARK';

/** A logger at debug level whose lines are collected, as every service's stdout is. */
function capturedLogger(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: createLogger('test', 'debug', sink), lines };
}

const jwt = `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIke${MARK}In0.c2lnbmF0dXJl${MARK}`;

describe('log redaction', () => {
  it('writes no token, e-mail, display name, comment body or task description, however they are nested', () => {
    const { logger, lines } = capturedLogger();
    const event = { id: 'e1', data: { after: { title: `t ${MARK}`, description: `d ${MARK}`, body: `b ${MARK}` }, before: { description: `old ${MARK}` } } };
    logger.info({ event, headers: { authorization: `Bearer ${MARK}` }, token: MARK, user: { email: `${MARK}@example.com`, display_name: `Ann ${MARK}` } }, 'event seen');
    logger.info({ env: { ROUTER_MQTT_PASSWORD: MARK, JWT_SECRET: MARK }, url: `postgres://capture:${MARK}@db:5432/taskflow` }, `connecting with ${jwt}`);
    // pg quotes whole rows in `detail`; messages may quote addresses and tokens.
    const pgError = Object.assign(new Error(`duplicate key for ${MARK}.user@example.org`), { code: '23505', detail: `Failing row contains (x, ${MARK}).` });
    logger.error({ err: pgError }, 'insert failed');
    logger.error(pgError, 'insert failed again');
    logger.warn({ err: new Error('wrapped', { cause: new Error(`inner ${jwt}`) }) }, 'nested cause');
    logger.child({ token: MARK, requestId: 'r1' }).info({ args: [{ body: MARK }] }, 'child');
    logger.debug({ payload: Buffer.from(`{"body":"${MARK}"}`) }, 'binary');
    expect(lines).toHaveLength(7);
    expect(lines.filter((l) => l.includes(MARK))).toEqual([]);
    // What is needed to operate stays: ids, codes, messages, non-secret fields.
    const first = JSON.parse(lines[0]!) as { event: { id: string }; service: string };
    expect(first.event.id).toBe('e1');
    expect(first.service).toBe('test');
    expect(JSON.parse(lines[2]!)).toMatchObject({ err: { code: '23505', message: 'duplicate key for [email]', detail: '[redacted]' }, msg: 'insert failed' });
    expect(JSON.parse(lines[3]!)).toMatchObject({ err: { code: '23505' }, msg: 'insert failed again' });
  });

  it('names no person: user ids under any key that holds one are pseudonyms, the same in every logger', () => {
    const { logger, lines } = capturedLogger();
    const other = capturedLogger();
    const user = '7f0c2a4e-1b3d-4c5e-8f90-a1b2c3d4e5f6';
    logger.info({ userId: user, clientId: `${user}.board-1`, actor: { userId: user }, userIds: [user], user_id: user }, 'refused');
    logger.warn({ err: Object.assign(new Error('erased'), { subject: user }) }, 'erasure step');
    other.logger.child({ sub: user }).info('child');
    const all = [...lines, ...other.lines];
    expect(all).toHaveLength(3);
    expect(all.filter((l) => l.includes(user))).toEqual([]);
    const p = logPseudonym(user);
    expect(JSON.parse(lines[0]!)).toMatchObject({ userId: p, clientId: `${p}.board-1`, actor: { userId: p }, userIds: [p], user_id: p });
    expect(JSON.parse(lines[1]!)).toMatchObject({ err: { subject: p } });
    expect(JSON.parse(other.lines[0]!)).toMatchObject({ sub: p });
  });

  it('keeps harmless keys that merely contain a sensitive word, and survives cycles and depth', () => {
    const cyclic: Record<string, unknown> = { shardId: 's1', tokens: 3 };
    cyclic.self = cyclic;
    expect(redactForLog(cyclic)).toEqual({ shardId: 's1', tokens: 3, self: '[circular]' });
    let deep: Record<string, unknown> = { leaf: MARK };
    for (let i = 0; i < 50; i++) deep = { next: deep };
    expect(JSON.stringify(redactForLog(deep))).toContain('[too deep]');
  });
});
