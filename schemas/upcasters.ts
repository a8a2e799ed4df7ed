// Upcasters: pure functions that turn an event written against an older schema version into the
// next version, so readers only ever handle the current one. Register one per (schema,
// fromVersion) when a schema gets a new version; the chain v1 → v2 → … runs in order.

export type EventObject = Record<string, unknown>;

export interface Upcaster {
  /** Schema name, e.g. "task". */
  schema: string;
  /** The version this upcaster reads; it returns the event at fromVersion + 1. */
  fromVersion: number;
  /** Must not mutate its input: readers may hold on to the original (DLQ, logs). */
  upcast(event: Readonly<EventObject>): EventObject;
}

/** The upcasters in use. Only v1 schemas exist so far, so there is nothing to upcast yet. */
export const UPCASTERS: readonly Upcaster[] = [];
