// Structured JSON logs through pino. Services take a Logger port so tests can pass `silentLogger`.
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = Pick<PinoLogger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;

export function createLogger(service: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: service, level, base: { service } });
}

export const silentLogger: Logger = pino({ level: 'silent' });
