// Structured JSON logs through pino. Services take a Logger port so tests can pass `silentLogger`.
import { pino, type Logger as PinoLogger } from 'pino';
import { oneOfSetting } from './config.js';

export type Logger = Pick<PinoLogger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;

export const LOG_SETTINGS = {
  level: oneOfSetting({ name: 'LOG_LEVEL', allowed: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, default: 'info', meaning: 'Least severity of the JSON log lines written to stdout.' }),
};

export function createLogger(service: string, level: string = LOG_SETTINGS.level.read(process.env)): Logger {
  return pino({ name: service, level, base: { service } });
}

export const silentLogger: Logger = pino({ level: 'silent' });
