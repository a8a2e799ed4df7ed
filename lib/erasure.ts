// The port between the gdpr processor and a sink that holds a subject's personal data. Each owner
// implements it beside its store in `<service>/erasure-sink.ts` (gdpr/policy.test.ts finds them
// there and holds them to gdpr/POLICY.md); the launcher hands them to the processor, so gdpr/
// never imports a service.
import type { Env } from './config.js';

/** What identifies the subject's data, captured before anything is purged (a purge cannot be re-derived after). */
export interface SubjectIdentifiers {
  subject: string;
  email: string | null;
  displayName: string | null;
  /** Their authored content as it was: rows they wrote and its plaintext. */
  authored: readonly { table: 'tasks' | 'comments'; id: string; text: string }[];
}

export interface PurgeResult {
  /** Rows or documents removed or anonymised by this call (0 when repeated). */
  changed: number;
}

export interface ScanResult {
  /** How many rows or documents the scan read. */
  scanned: number;
  /** How many of them still hold any of the identifiers: must be 0 before a sink counts as done. */
  found: number;
}

export interface ErasureSink {
  /** The sink's name in gdpr/POLICY.md. */
  readonly sink: string;
  /** Idempotent: a repeat after a crash changes nothing more. */
  purge(ids: SubjectIdentifiers, onProgress?: (done: number) => void): Promise<PurgeResult>;
  scan(ids: SubjectIdentifiers): Promise<ScanResult>;
}

/** Every string that must not be found in a sink after erasure (non-empty ones only). */
export function identifierStrings(ids: SubjectIdentifiers): string[] {
  return [...new Set([ids.subject, ids.email, ids.displayName, ...ids.authored.map((a) => a.text)].filter((s): s is string => !!s && s.length > 0))];
}

/** Whether any string in `value` (a parsed JSON document: an event, a notification, …) contains any of the needles. */
export function holdsAny(value: unknown, needles: readonly string[]): boolean {
  if (typeof value === 'string') return needles.some((n) => value.includes(n));
  if (Array.isArray(value)) return value.some((v) => holdsAny(v, needles));
  if (value && typeof value === 'object') return Object.entries(value).some(([k, v]) => holdsAny(k, needles) || holdsAny(v, needles));
  return false;
}

/** A sink's steps over its owner's store, as `<service>/erasure-sink.ts` exports them (ERASURE_SINKS). */
export interface SinkSteps<S> {
  readonly sink: string;
  purge(store: S, ids: SubjectIdentifiers, onProgress?: (done: number) => void): Promise<PurgeResult>;
  scan(store: S, ids: SubjectIdentifiers): Promise<ScanResult>;
}

export function bindSink<S>(steps: SinkSteps<S>, store: S): ErasureSink {
  return { sink: steps.sink, purge: (ids, onProgress) => steps.purge(store, ids, onProgress), scan: (ids) => steps.scan(store, ids) };
}

/**
 * What a `<service>/erasure-sink.ts` module exports: its steps (ERASURE_SINKS, which
 * gdpr/policy.test.ts holds to the policy) and `openErasureSinks`, which opens them on the
 * service's own stores from the environment the service itself reads (DYNAMODB_TABLE_*, …).
 * The launcher (`taskflow gdpr`, cli/commands/gdpr.ts) imports every such module, opens its sinks
 * and hands them to the processor, so gdpr/ never imports a service.
 */
export interface ErasureSinkModule {
  ERASURE_SINKS: readonly SinkSteps<never>[];
  openErasureSinks(env: Env): Promise<{ sinks: ErasureSink[]; close(): Promise<void> }>;
}

/**
 * `value` (a parsed JSON document) with every string holding one of the needles, and every
 * encrypted field (`{enc, kid, …}`) under one of `kids`, replaced by null; object keys are kept.
 * Returns the same reference when nothing held one, so a caller can tell a change by identity.
 */
export function blankHolding(value: unknown, needles: readonly string[], kids: readonly string[] = []): unknown {
  if (typeof value === 'string') return needles.some((n) => value.includes(n)) ? null : value;
  if (Array.isArray(value)) {
    const out = value.map((v) => blankHolding(v, needles, kids));
    return out.some((v, i) => v !== value[i]) ? out : value;
  }
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (o.enc === 'v1' && typeof o.kid === 'string' && kids.includes(o.kid)) return null;
    const entries = Object.entries(o).map(([k, v]) => [k, v, blankHolding(v, needles, kids)] as const);
    // fromEntries defines own properties: an assignment would treat a JSON key "__proto__" as the prototype.
    return entries.some(([, v, b]) => b !== v) ? Object.fromEntries(entries.map(([k, , b]) => [k, b])) : value;
  }
  return value;
}
