// Development mode: the one switch behind everything that exists only on a laptop — a generated
// JWT secret file, the demo board's token-handing session endpoint, capture as a superuser.
// `taskflow dev` (and `taskflow stack`) set TASKFLOW_ENV=development for what they start; any
// other process is production, where those conveniences are start-up errors naming the setting.
import { type Env, oneOfSetting } from './config.js';
import { TaskflowError } from './errors.js';

export const ENV_VAR = 'TASKFLOW_ENV';
export const DEVELOPMENT = 'development';

export const DEV_MODE_SETTINGS = {
  mode: oneOfSetting({ name: ENV_VAR, allowed: [DEVELOPMENT, 'production'] as const, default: 'production', meaning: 'development allows the laptop-only conveniences (dev JWT secret file, demo sessions, capture as a superuser); set by taskflow dev.' }),
};

export function isDevelopment(env: Env): boolean {
  return DEV_MODE_SETTINGS.mode.read(env) === DEVELOPMENT;
}

/** Refuses, outside development mode, to run something that must never face users. */
export function requireDevelopment(env: Env, what: string): void {
  if (!isDevelopment(env)) {
    throw new TaskflowError('DEVELOPMENT_ONLY', `${what} exists only in development mode (${ENV_VAR}=${DEVELOPMENT}, which \`taskflow dev\` sets); it is not started in production`);
  }
}
