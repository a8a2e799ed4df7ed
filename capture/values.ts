// Column values from pgoutput's text format to JSON. pg's default type parsers turn timestamps
// into JS Dates (losing microseconds and, for `date`, shifting by the local zone) and would make
// int8 lossy as a number, so capture uses its own: JSON-native types become JSON values,
// timestamps become RFC 3339 strings with every digit kept, and every other type — including
// ones it does not know (enums, arrays, domains, extension types) — travels as Postgres's text.
import type { Pgoutput } from 'pg-logical-replication';

/** Postgres type OIDs capture converts; everything else stays text. */
const OID = {
  bool: 16,
  int8: 20,
  int2: 21,
  int4: 23,
  oid: 26,
  float4: 700,
  float8: 701,
  json: 114,
  jsonb: 3802,
  timestamp: 1114,
  timestamptz: 1184,
  textArray: 1009,
  varcharArray: 1015,
} as const;

export type ColumnValue = string | number | boolean | null | object;
export type TextParser = (text: string) => ColumnValue;

const asText: TextParser = (t) => t;
const asInt: TextParser = (t) => Number(t);
const asFloat: TextParser = (t) => {
  const n = Number(t);
  return Number.isFinite(n) ? n : t; // NaN / Infinity are not JSON numbers
};

// "2026-11-26 12:00:00.123456+00" (DateStyle ISO) → "2026-11-26T12:00:00.123456Z";
// offsets keep their digits: "+05:30", "-03".
const TIMESTAMP = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?$/;

export function timestampToRfc3339(text: string): string {
  const m = TIMESTAMP.exec(text);
  if (!m) return text; // infinity, BC dates: pass Postgres's text through
  const [, date, time, sign, hh, mm, ss] = m;
  if (!sign) return `${date}T${time}`;
  if (hh === '00' && (mm ?? '00') === '00' && (ss ?? '00') === '00') return `${date}T${time}Z`;
  return `${date}T${time}${sign}${hh}:${mm ?? '00'}${ss && ss !== '00' ? `:${ss}` : ''}`;
}

/**
 * A one-dimensional text[] literal ("{a,\"b c\",NULL}") as a JSON array of strings (null for
 * NULL elements): `tasks.labels` travels as a list, not as Postgres's text. Anything else
 * (several dimensions, explicit bounds) passes through as text, like a type capture does not know.
 */
export function parseTextArray(text: string): ColumnValue {
  if (!text.startsWith('{') || !text.endsWith('}')) return text;
  const out: (string | null)[] = [];
  const body = text.slice(1, -1);
  if (body === '') return out;
  let i = 0;
  while (i <= body.length) {
    if (body[i] === '{') return text;
    let value = '';
    let quoted = false;
    if (body[i] === '"') {
      quoted = true;
      i += 1;
      while (i < body.length && body[i] !== '"') {
        if (body[i] === '\\') i += 1;
        value += body[i] ?? '';
        i += 1;
      }
      i += 1; // closing quote
    } else {
      while (i < body.length && body[i] !== ',') value += body[i++];
    }
    out.push(!quoted && value === 'NULL' ? null : value);
    if (i < body.length && body[i] !== ',') return text;
    i += 1; // the comma
  }
  return out;
}

const PARSERS = new Map<number, TextParser>([
  [OID.bool, (t) => t === 't'],
  [OID.int2, asInt],
  [OID.int4, asInt],
  [OID.oid, asInt],
  [OID.int8, asText], // beyond 2^53 a JSON number would lose digits
  [OID.float4, asFloat],
  [OID.float8, asFloat],
  [OID.json, (t) => JSON.parse(t) as ColumnValue],
  [OID.jsonb, (t) => JSON.parse(t) as ColumnValue],
  [OID.timestamp, timestampToRfc3339],
  [OID.timestamptz, timestampToRfc3339],
  [OID.textArray, parseTextArray],
  [OID.varcharArray, parseTextArray],
]);

export function textParserFor(typeOid: number): TextParser {
  return PARSERS.get(typeOid) ?? asText;
}

/** After a relation message, pg-logical-replication's parser reads that table's rows with these. */
export function useCaptureColumnParsers(msg: Pgoutput.Message): void {
  if (msg.tag === 'relation') for (const col of msg.columns) col.parser = textParserFor(col.typeOid);
}
