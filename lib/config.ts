// Typed readers for environment variables. Each service's `loadConfig(env)` is built from these
// so a bad value fails at start-up with the variable's name, never deep inside a request.
import { ConfigError } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

export function str(env: Env, name: string, fallback?: string): string {
  const v = env[name];
  if (v === undefined || v === '') {
    if (fallback !== undefined) return fallback;
    throw new ConfigError(name, 'is required but not set');
  }
  return v;
}

export function optionalStr(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

export function int(env: Env, name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const n = Number(raw);
  if (range.min !== undefined && n < range.min) throw new ConfigError(name, `must be >= ${range.min}, got ${n}`);
  if (range.max !== undefined && n > range.max) throw new ConfigError(name, `must be <= ${range.max}, got ${n}`);
  return n;
}

/** A decimal number (e.g. a rate of 0.75/s). */
export function num(env: Env, name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+(\.\d+)?$/.test(raw.trim())) throw new ConfigError(name, `must be a number, got "${raw}"`);
  const n = Number(raw);
  if (range.min !== undefined && n < range.min) throw new ConfigError(name, `must be >= ${range.min}, got ${n}`);
  if (range.max !== undefined && n > range.max) throw new ConfigError(name, `must be <= ${range.max}, got ${n}`);
  return n;
}

export function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

export function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

export function url(env: Env, name: string, fallback?: string): string {
  const v = str(env, name, fallback);
  try {
    new URL(v);
  } catch {
    throw new ConfigError(name, `must be a URL, got "${v}"`);
  }
  return v;
}

// Settings declared once. A service lists what it reads as Setting values (name, type, default,
// meaning); its loadConfig reads them through `read`, and its `--help` and README reference are
// rendered from the same list, so the three cannot drift apart.

export interface Setting<T> {
  /** The environment variable. */
  readonly name: string;
  /** The accepted values as help shows them, e.g. "integer 10..30000", "true|false". */
  readonly type: string;
  /** The default as help shows it; undefined when the variable is required. */
  readonly default: string | undefined;
  readonly meaning: string;
  read(env: Env): T;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a list of settings of any value type
export type AnySetting = Setting<any>;

interface Declared {
  name: string;
  meaning: string;
}

function rangeText(range: { min?: number; max?: number }): string {
  if (range.min !== undefined && range.max !== undefined) return `integer ${range.min}..${range.max}`;
  if (range.min !== undefined) return `integer >= ${range.min}`;
  if (range.max !== undefined) return `integer <= ${range.max}`;
  return 'integer';
}

/** A string; required unless it has a default. */
export function stringSetting(d: Declared & { default?: string; type?: string }): Setting<string> {
  return { name: d.name, type: d.type ?? 'string', default: d.default, meaning: d.meaning, read: (env) => str(env, d.name, d.default) };
}

/** A string that may be unset; `default` describes what happens then (e.g. "derived from DATABASE_URL"). */
export function optionalSetting(d: Declared & { default: string; type?: string }): Setting<string | undefined> {
  return { name: d.name, type: d.type ?? 'string', default: d.default, meaning: d.meaning, read: (env) => optionalStr(env, d.name) };
}

export function intSetting(d: Declared & { default: number; min?: number; max?: number }): Setting<number> {
  const range = { ...(d.min !== undefined ? { min: d.min } : {}), ...(d.max !== undefined ? { max: d.max } : {}) };
  return { name: d.name, type: rangeText(range), default: String(d.default), meaning: d.meaning, read: (env) => int(env, d.name, d.default, range) };
}

export function numberSetting(d: Declared & { default: number; min: number; max: number }): Setting<number> {
  return { name: d.name, type: `number ${d.min}..${d.max}`, default: String(d.default), meaning: d.meaning, read: (env) => num(env, d.name, d.default, { min: d.min, max: d.max }) };
}

export function boolSetting(d: Declared & { default: boolean }): Setting<boolean> {
  return { name: d.name, type: 'true|false', default: String(d.default), meaning: d.meaning, read: (env) => bool(env, d.name, d.default) };
}

export function oneOfSetting<T extends string>(d: Declared & { allowed: readonly T[]; default: T }): Setting<T> {
  return { name: d.name, type: d.allowed.join('|'), default: d.default, meaning: d.meaning, read: (env) => oneOf(env, d.name, d.allowed, d.default) };
}

/** A URL; required unless it has a default. */
export function urlSetting(d: Declared & { default?: string }): Setting<string> {
  return { name: d.name, type: 'URL', default: d.default, meaning: d.meaning, read: (env) => url(env, d.name, d.default) };
}

/** A setting with its own parsing (a Postgres identifier, a fraction …). */
export function customSetting<T>(d: Declared & { type: string; default: string | undefined; read(env: Env): T }): Setting<T> {
  return { name: d.name, type: d.type, default: d.default, meaning: d.meaning, read: d.read };
}

export type SettingValues<S extends Record<string, AnySetting>> = { [K in keyof S]: ReturnType<S[K]['read']> };

/** Reads every setting of a declaration; the first bad value throws a ConfigError naming its variable. */
export function readSettings<S extends Record<string, AnySetting>>(env: Env, settings: S): SettingValues<S> {
  return Object.fromEntries(Object.entries(settings).map(([key, s]) => [key, s.read(env)])) as SettingValues<S>;
}

/** The same settings once each, in first-declared order (services share AWS, JWT and log settings). */
export function uniqueSettings(...lists: (readonly AnySetting[] | Record<string, AnySetting>)[]): AnySetting[] {
  const byName = new Map<string, AnySetting>();
  for (const list of lists) for (const s of Array.isArray(list) ? list : Object.values(list)) if (!byName.has(s.name)) byName.set(s.name, s);
  return [...byName.values()];
}

/** `--help` text: one line per setting with its type and default, its meaning indented below. */
export function settingsHelp(settings: readonly AnySetting[]): string {
  const width = Math.max(...settings.map((s) => s.name.length));
  return settings
    .map((s) => `  ${s.name.padEnd(width)}  ${s.type}; ${s.default === undefined ? 'required' : `default ${s.default}`}\n  ${' '.repeat(width)}  ${s.meaning}`)
    .join('\n');
}

/** The README reference: a Markdown table of the settings. */
export function settingsTable(settings: readonly AnySetting[]): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const rows = settings.map((s) => `| \`${s.name}\` | ${cell(s.type)} | ${s.default === undefined ? '**required**' : cell(s.default)} | ${cell(s.meaning)} |`);
  return ['| variable | type | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** The env var through which a service finds a DynamoDB table, e.g. DYNAMODB_TABLE_LEASES. */
export function tableEnvVar(key: string): string {
  return `DYNAMODB_TABLE_${key.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}
