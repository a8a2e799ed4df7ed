// Validation of events read from the stream: one call per event in the routers' hot path, so
// the validators are compiled ahead of time (generated/validators.ts, by `taskflow schemas
// gen-types`: loading them needs no ajv) and the checks after the schema are O(1).
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import * as precompiled from './generated/validators.js';
import { EVENT_KINDS, type EventKind } from './kinds.js';
import { parseSchemaId, schemaId } from './schema-id.js';
import type { ChangeEvent } from './types.js';
import { UPCASTERS, type EventObject, type Upcaster } from './upcasters.js';

export type { ChangeEvent, EntityChangeEvent, TruncateEvent, GdprErasureEvent } from './types.js';
export { isEntityChange } from './types.js';

export type RejectReason =
  /** not a JSON object */
  | 'not_an_object'
  /** `type` is not an event type this reader knows */
  | 'unknown_type'
  /** `dataschema` names another schema than `type` implies, or a version this reader cannot upcast (or read, when newer) */
  | 'unknown_schema'
  /** a key or routing attribute is missing (data.key, workspaceid, projectid, key columns of a row image) */
  | 'missing_keys'
  /** any other violation of the schemas */
  | 'schema_violation'
  /** valid by the schemas, but attributes contradict each other (op vs type, id vs source, routing vs row) */
  | 'inconsistent';

export type ValidationResult =
  | {
      ok: true;
      event: ChangeEvent;
      /** the dataschema version the event was upcast from */
      upcastFrom?: number;
      /** the newer dataschema version the event named, read as this reader's version (tolerant reader, CONTRACTS.md) */
      readAsOlder?: number;
    }
  | { ok: false; reason: RejectReason; message: string };

export type EventValidator = (input: unknown) => ValidationResult;

/** Where a `required` failure means a missing key: the key itself and the row images (which require only key and routing columns). */
const KEY_PATHS = new Set(['/data/key', '/data/before', '/data/after']);
const ROUTING_ATTRIBUTES = new Set(['workspaceid', 'projectid']);

function fieldPath(instancePath: string): string {
  return instancePath === '' ? '' : instancePath.slice(1).replaceAll('/', '.');
}

function join(path: string, field: string): string {
  return path === '' ? field : `${path}.${field}`;
}

/** A rejection naming the field, from ajv's errors (first failure; anyOf branches joined). */
function schemaRejection(errors: ErrorObject[]): ValidationResult {
  const first = errors.find((e) => e.keyword !== 'if' && e.keyword !== 'anyOf' && e.keyword !== 'allOf') ?? errors[0];
  if (!first) return { ok: false, reason: 'schema_violation', message: 'invalid event' };
  const path = fieldPath(first.instancePath);
  if (first.keyword === 'required') {
    const missing = (first.params as { missingProperty: string }).missingProperty;
    const isKey = first.instancePath === '' ? ROUTING_ATTRIBUTES.has(missing) : KEY_PATHS.has(first.instancePath) || (first.instancePath === '/data' && missing === 'key');
    return { ok: false, reason: isKey ? 'missing_keys' : 'schema_violation', message: `${join(path, missing)} is required` };
  }
  if (first.keyword === 'additionalProperties') {
    const extra = (first.params as { additionalProperty: string }).additionalProperty;
    return { ok: false, reason: 'schema_violation', message: `${join(path, extra)} is not allowed here` };
  }
  const alternatives = errors.some((e) => e.keyword === 'anyOf' && e.instancePath === first.instancePath)
    ? errors.filter((e) => e.instancePath === first.instancePath && e.keyword !== 'anyOf').map(describe)
    : [describe(first)];
  return { ok: false, reason: 'schema_violation', message: `${path || 'event'} ${alternatives.join(' or ')}` };
}

function describe(error: ErrorObject): string {
  const params = error.params as { allowedValues?: unknown[]; allowedValue?: unknown };
  if (error.keyword === 'enum') return `must be one of ${JSON.stringify(params.allowedValues)}`;
  if (error.keyword === 'const') return `must be ${JSON.stringify(params.allowedValue)}`;
  return error.message ?? `fails ${error.keyword}`;
}

function inconsistent(message: string): ValidationResult {
  return { ok: false, reason: 'inconsistent', message };
}

/** "16/B374D8" + 3 → "0000001600B374D8-00000003" without BigInt: the LSN halves are 32 bits each. */
export function idFromSource(lsn: string, txIndex: number): string {
  const slash = lsn.indexOf('/');
  return `${lsn.slice(0, slash).padStart(8, '0')}${lsn.slice(slash + 1).padStart(8, '0')}-${String(txIndex).padStart(8, '0')}`;
}

interface SourceLike {
  lsn: string;
  txIndex: number;
  txSize: number;
}

/**
 * `id === idFromSource(lsn, txIndex)`, compared in place for the shapes the schema allows (no
 * strings built per event: this runs for every event a reader validates); other shapes compare
 * the built string.
 */
export function idMatchesSource(id: string, lsn: string, txIndex: number): boolean {
  const slash = lsn.indexOf('/');
  const loLength = lsn.length - slash - 1;
  if (slash < 1 || slash > 8 || loLength < 1 || loLength > 8 || !Number.isInteger(txIndex) || txIndex < 0 || txIndex > 99_999_999 || id.length !== 25) {
    return id === idFromSource(lsn, txIndex);
  }
  for (let i = 0; i < 8; i += 1) {
    const hi = i - (8 - slash);
    const lo = i - (8 - loLength);
    if (id.charCodeAt(i) !== (hi < 0 ? 0x30 : lsn.charCodeAt(hi))) return false;
    if (id.charCodeAt(8 + i) !== (lo < 0 ? 0x30 : lsn.charCodeAt(slash + 1 + lo))) return false;
  }
  if (id.charCodeAt(16) !== 0x2d /* - */) return false;
  let rest = txIndex;
  for (let i = 24; i > 16; i -= 1) {
    if (id.charCodeAt(i) !== 0x30 + (rest % 10)) return false;
    rest = Math.floor(rest / 10);
  }
  return true;
}

function checkPosition(event: { id: string }, source: SourceLike): ValidationResult | undefined {
  if (source.txIndex >= source.txSize) return inconsistent(`data.source.txIndex ${source.txIndex} is not below txSize ${source.txSize}`);
  if (idMatchesSource(event.id, source.lsn, source.txIndex)) return undefined;
  const expected = idFromSource(source.lsn, source.txIndex);
  if (event.id !== expected) return inconsistent(`id "${event.id}" does not match data.source (lsn ${source.lsn}, txIndex ${source.txIndex}): expected "${expected}"`);
  return undefined;
}

type Row = Record<string, unknown>;

/** What `target` may hold: a consumer's (lease) name. */
const CONSUMER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Cross-field rules of entity events that a JSON Schema cannot state. */
function checkEntity(event: EventObject, kind: Extract<EventKind, { kind: 'entity' }>): ValidationResult | undefined {
  const data = event.data as {
    op: string; table: string; key: { id: string }; before: Row | null; after: Row | null; changed?: string[]; omitted?: string[]; source: SourceLike;
  };
  if (data.op !== kind.op) return inconsistent(`data.op is "${data.op}" but type ${kind.type} needs "${kind.op}"`);
  if (event.target !== undefined) {
    // Every consumer but the named one skips such an event: on a change it would lose data.
    if (data.op !== 'r') return inconsistent(`target is only for snapshot (r) events, found on op "${data.op}"`);
    if (typeof event.target !== 'string' || !CONSUMER_NAME.test(event.target)) return inconsistent(`target must be a consumer's name, found ${JSON.stringify(event.target)}`);
  }
  const row = data.after ?? data.before;
  if (row) {
    if (row.id !== data.key.id) return inconsistent(`data.key.id "${data.key.id}" differs from the row's id "${String(row.id)}"`);
    if (row.workspace_id !== event.workspaceid) {
      return inconsistent(`workspaceid "${String(event.workspaceid)}" differs from the row's workspace_id "${String(row.workspace_id)}"`);
    }
    const project = kind.entity === 'project' ? row.id : (row.project_id ?? undefined);
    if (event.projectid !== project) {
      return inconsistent(`projectid ${JSON.stringify(event.projectid)} differs from the row's project ${JSON.stringify(project)}`);
    }
  }
  if (data.op === 'u' && data.after) {
    const after = data.after;
    const missing = (data.changed ?? []).find((c) => !Object.hasOwn(after, c));
    if (missing !== undefined) return inconsistent(`data.changed lists "${missing}" but data.after does not carry it`);
    const present = (data.omitted ?? []).find((c) => Object.hasOwn(after, c));
    if (present !== undefined) return inconsistent(`data.omitted lists "${present}" but data.after carries it`);
  }
  const subject = `${data.table}/${data.key.id}`;
  if (event.subject !== subject) return inconsistent(`subject "${String(event.subject)}" should be "${subject}"`);
  return checkPosition(event as { id: string }, data.source);
}

function checkTruncate(event: EventObject): ValidationResult | undefined {
  const data = event.data as { table: string; tables: string[]; source: SourceLike };
  if (event.workspaceid !== '*') return inconsistent(`workspaceid of a truncate must be "*" (it affects every workspace), found "${String(event.workspaceid)}"`);
  if (!data.tables.includes(data.table)) return inconsistent(`data.table "${data.table}" is not among data.tables`);
  return checkPosition(event as { id: string }, data.source);
}

export interface EventValidatorOptions {
  /** Upcasters from older schema versions; defaults to the ones in use (schemas/upcasters.ts). */
  upcasters?: readonly Upcaster[];
}

/** Validators by schema name (one per data schema: the four verbs of an entity share theirs), and the version each checks. */
export interface CompiledValidators {
  versions: Readonly<Record<string, number>>;
  validators: Readonly<Record<string, ValidateFunction>>;
}

/** The current schemas' validators, precompiled. */
export function createEventValidator(options: EventValidatorOptions = {}): EventValidator {
  return eventValidatorFrom(precompiled as unknown as CompiledValidators, options);
}

/** An event validator from compiled validators (compile-validators.ts compiles other documents' at run time). */
export function eventValidatorFrom(compiled: CompiledValidators, options: EventValidatorOptions = {}): EventValidator {
  const latest = new Map(Object.entries(compiled.versions));
  const validators = new Map<string, ValidateFunction>();
  /** Event type → the dataschema id it names when written against the current version. */
  const currentIds = new Map<string, string>();
  for (const [type, kind] of EVENT_KINDS) {
    const version = latest.get(kind.schema);
    const validate = compiled.validators[kind.schema];
    if (version === undefined || !validate) throw new Error(`no schema "${kind.schema}" for event type ${type}`);
    validators.set(type, validate);
    currentIds.set(type, schemaId({ name: kind.schema, version }));
  }
  const upcasters = new Map<string, Upcaster>();
  for (const u of options.upcasters ?? UPCASTERS) upcasters.set(`${u.schema}/v${u.fromVersion}`, u);

  function upcast(event: EventObject, name: string, from: number, to: number): EventObject | string {
    let current = event;
    for (let v = from; v < to; v += 1) {
      const step = upcasters.get(`${name}/v${v}`);
      if (!step) return `no upcaster from ${name} v${v} to v${v + 1}`;
      try {
        current = { ...step.upcast(current), dataschema: schemaId({ name, version: v + 1 }) };
      } catch (err) {
        // An old event the upcaster cannot read is a bad event, not a reason to stop the reader.
        return `upcaster from ${name} v${v} to v${v + 1} failed: ${(err as Error).message}`;
      }
    }
    return current;
  }

  return function validateEvent(input: unknown): ValidationResult {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      return { ok: false, reason: 'not_an_object', message: 'an event must be a JSON object' };
    }
    let event = input as EventObject;
    const type = event.type;
    if (typeof type !== 'string') return { ok: false, reason: 'schema_violation', message: 'type is required and must be a string' };
    const kind = EVENT_KINDS.get(type);
    const validate = validators.get(type);
    if (!kind || !validate) return { ok: false, reason: 'unknown_type', message: `unknown event type "${type}"` };

    let upcastFrom: number | undefined;
    let readAsOlder: number | undefined;
    const dataschema = event.dataschema;
    // Nearly every event names a current schema: skip parsing it then.
    const ref = typeof dataschema === 'string' && dataschema !== currentIds.get(type) ? parseSchemaId(dataschema) : undefined;
    if (ref) {
      if (ref.name !== kind.schema) {
        return { ok: false, reason: 'unknown_schema', message: `dataschema names "${ref.name}" but type ${type} needs "${kind.schema}"` };
      }
      const current = latest.get(ref.name) ?? 0;
      // Tolerant reader: a newer version of a schema this reader knows is read as its own
      // version (what it declares must hold; the rest is ignored). `schemas check` keeps every
      // step forward compatible, so this fails only for an event that is invalid anyway.
      if (ref.version > current) readAsOlder = ref.version;
      if (ref.version < current) {
        const upcasted = upcast(event, ref.name, ref.version, current);
        if (typeof upcasted === 'string') return { ok: false, reason: 'unknown_schema', message: upcasted };
        event = upcasted;
        upcastFrom = ref.version;
      }
    }
    if (!validate(event)) return schemaRejection(validate.errors ?? []);

    if (event.target !== undefined && kind.kind !== 'entity') return inconsistent(`target is only for snapshot (r) events, found on ${type}`);
    const problem = kind.kind === 'entity' ? checkEntity(event, kind) : kind.kind === 'truncate' ? checkTruncate(event) : undefined;
    if (problem) return problem;
    if (readAsOlder !== undefined) return { ok: true, event: event as ChangeEvent, readAsOlder };
    return upcastFrom === undefined ? { ok: true, event: event as ChangeEvent } : { ok: true, event: event as ChangeEvent, upcastFrom };
  };
}

/** The validator readers use: current schemas, registered upcasters. */
export const validateEvent: EventValidator = createEventValidator();
