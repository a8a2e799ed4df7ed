// Structured JSON logs through pino. Services take a Logger port so tests can pass `silentLogger`.
//
// Logs are a sink that erasure never reaches and many people read, so nothing personal and no
// credential is ever written: every value a service logs — merge objects, messages, errors (pg's
// `detail` quotes whole rows), child bindings — goes through `redactForLog` first. Keys are
// redacted by name wherever they are nested (tokens, passwords, secrets, emails, display names,
// comment bodies, task titles and descriptions), and strings are scrubbed of JWTs, bearer
// credentials, e-mail addresses and passwords in URLs. A person's id under a key that names one
// (userId, actor, subject, clientId …) becomes a pseudonym (`logPseudonym`): lines about one user
// still correlate across services, and no line names the person, so an erasure has nothing to
// purge here (gdpr/POLICY.md `logs`).
import { createHash } from 'node:crypto';
import { pino, stdSerializers, type DestinationStream, type Logger as PinoLogger } from 'pino';
import { oneOfSetting } from './config.js';

export type Logger = Pick<PinoLogger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;

export const LOG_SETTINGS = {
  level: oneOfSetting({ name: 'LOG_LEVEL', allowed: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, default: 'info', meaning: 'Least severity of the JSON log lines written to stdout.' }),
};

export const REDACTED = '[redacted]';

/** Keys (compared lower-case, without `_`/`-`) whose values never reach a log, at any depth. */
const SENSITIVE_KEYS = new Set(['email', 'displayname', 'body', 'description', 'title', 'detail', 'cookie', 'setcookie', 'authorization', 'auth', 'credentials']);
/** Key endings that mark a credential: accessToken, ROUTER_MQTT_PASSWORD, clientSecret … */
const SENSITIVE_SUFFIXES = ['token', 'password', 'passwd', 'secret', 'apikey', 'privatekey'];

const STRING_SCRUBS: ReadonlyArray<[RegExp, string]> = [
  [/eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/g, '[jwt]'],
  [/\b(Bearer|Basic)\s+[^\s"',;]+/gi, `$1 ${REDACTED}`],
  [/(\/\/[^\s:/@]*):[^\s@/]*@/g, `$1:${REDACTED}@`],
  [/[\w.+-]+@[\w-]+(\.[\w-]+)*\.[a-z]{2,}/gi, '[email]'],
];

/** Keys (compared as SENSITIVE_KEYS) whose string values are a person's id (a client id starts with one). */
const PERSON_ID_KEYS = new Set(['userid', 'userids', 'user', 'actor', 'actorid', 'subject', 'sub', 'createdby', 'assigneeid', 'authorid', 'mentioned', 'memberid', 'clientid', 'recipient', 'recipientid']);

/**
 * A user id as logs show it: 64 bits of SHA-256 under a fixed label, like the subject-keys table's
 * kid — the same everywhere, so lines correlate, and it names nobody without the id itself, which
 * erasure removes from the source database.
 */
export function logPseudonym(id: string): string {
  return `u:${createHash('sha256').update(`taskflow/log-user\0${id}`).digest('hex').slice(0, 16)}`;
}

/** A client id is `<userId>.<suffix>` (lib/authz.ts): its user part pseudonymised, the suffix kept. */
function pseudonymiseId(value: string): string {
  const dot = value.indexOf('.');
  return dot > 0 ? `${logPseudonym(value.slice(0, dot))}${value.slice(dot)}` : logPseudonym(value);
}

function personIdKey(key: string): boolean {
  return PERSON_ID_KEYS.has(key.toLowerCase().replace(/[_-]/g, ''));
}

const MAX_DEPTH = 8;

function sensitiveKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[_-]/g, '');
  return SENSITIVE_KEYS.has(k) || SENSITIVE_SUFFIXES.some((s) => k.endsWith(s));
}

export function scrubString(s: string): string {
  let out = s;
  for (const [pattern, replacement] of STRING_SCRUBS) out = out.replace(pattern, replacement);
  return out;
}

/** A copy of `value` fit for a log line (see the file comment). */
export function redactForLog(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  seen.add(value);
  if (value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (value instanceof Error) return redactForLog(stdSerializers.errWithCause(value), depth, seen);
  if (Array.isArray(value)) return value.map((v) => redactForLog(v, depth + 1, seen));
  if (value instanceof Date || value instanceof URL) return redactForLog(value.toString(), depth, seen);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (sensitiveKey(k) && v !== undefined && v !== null) out[k] = REDACTED;
    else if (personIdKey(k) && (typeof v === 'string' || Array.isArray(v))) out[k] = typeof v === 'string' ? pseudonymiseId(v) : v.map((x) => (typeof x === 'string' ? pseudonymiseId(x) : redactForLog(x, depth + 1, seen)));
    else out[k] = redactForLog(v, depth + 1, seen);
  }
  return out;
}

export function createLogger(service: string, level: string = LOG_SETTINGS.level.read(process.env), destination?: DestinationStream): Logger {
  const options = {
    name: service,
    level,
    base: { service },
    hooks: {
      logMethod(this: PinoLogger, args: unknown[], method: (...a: unknown[]) => void) {
        // An Error as the merge object is pino's `err` field; keep that shape once redacted.
        const [first, ...rest] = args;
        const merge = first instanceof Error ? { err: redactForLog(first) } : redactForLog(first);
        method.apply(this, [merge, ...rest.map((a) => redactForLog(a))]);
      },
    },
  };
  return withRedactedChildBindings(destination ? pino(options, destination) : pino(options));
}

/** pino deliberately skips the bindings formatter for children: redact their bindings here instead. */
function withRedactedChildBindings(logger: PinoLogger): PinoLogger {
  const child = logger.child.bind(logger);
  const redactingChild = (bindings: Record<string, unknown>, childOptions?: object): PinoLogger => withRedactedChildBindings(child(redactForLog(bindings) as Record<string, unknown>, childOptions));
  logger.child = redactingChild as unknown as PinoLogger['child'];
  return logger;
}

export const silentLogger: Logger = pino({ level: 'silent' });
