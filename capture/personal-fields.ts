// Encrypting personal fields before Kinesis (CAPTURE_ENCRYPT_PERSONAL_FIELDS, crypto-shredding):
// tasks.description under created_by's key, comments.body under author_id's (schemas/
// personal-fields.ts). Capture's path is synchronous and ordered; a key may need a DynamoDB read.
// So every event passes one FIFO: an event whose keys are all known (the cache's steady state)
// and that has nobody ahead of it is encrypted and sent at once; otherwise it waits in line while
// the missing keys are read, and nothing behind it overtakes it — the stream's order stays the
// WAL's. A key read that fails is retried until the session ends; the events still waiting are
// then read again by the next session (the slot is confirmed only up to what Kinesis holds).
import { ExpiringLru, encryptRow, rowSubject } from '../lib/field-crypto.js';
import type { BackoffPolicy } from '../lib/backoff.js';
import type { Logger } from '../lib/logger.js';
import { retry } from '../lib/retry.js';
import { type SubjectKey, SubjectErasedError, type SubjectKeyStore } from '../lib/subject-keys.js';
import type { ChangeEvent } from '../schemas/types.js';

type Resolved = SubjectKey | SubjectErasedError;

/** The subjects whose keys encrypting this event needs (none for most events). */
export function subjectsOf(event: ChangeEvent): string[] {
  const data = event.data as { table?: string; before?: Record<string, unknown> | null; after?: Record<string, unknown> | null };
  if (typeof data.table !== 'string') return [];
  const a = rowSubject(data.table, data.after);
  const b = rowSubject(data.table, data.before);
  return a === undefined ? (b === undefined ? [] : [b]) : b === undefined || b === a ? [a] : [a, b];
}

/** Encrypts the event's personal fields in place with the keys given (each subject's key or its erasure). */
export function encryptEvent(event: ChangeEvent, keyOf: (subject: string) => Resolved): void {
  const data = event.data as { table?: string; before?: Record<string, unknown> | null; after?: Record<string, unknown> | null };
  if (typeof data.table !== 'string') return;
  for (const row of [data.after, data.before]) {
    const subject = rowSubject(data.table, row);
    if (subject !== undefined) encryptRow(data.table, row, keyOf(subject));
  }
}

export interface SubjectKeyCacheOptions {
  /** A key destroyed elsewhere is still used for at most this long (its fields are unreadable all the same). */
  ttlMs: number;
  maxEntries: number;
  now?: () => number;
}

/** Capture's key cache, read synchronously on the hot path; outlives sessions. */
export class SubjectKeyCache {
  private readonly lru: ExpiringLru<Resolved>;
  constructor(
    readonly store: SubjectKeyStore,
    opts: SubjectKeyCacheOptions,
  ) {
    this.lru = new ExpiringLru(opts.ttlMs, opts.maxEntries, opts.now ?? Date.now);
  }

  peek(subject: string): Resolved | undefined {
    return this.lru.get(subject)?.value;
  }

  /** Reads the key (creating it on first use), or learns that the subject is erased. */
  async load(subject: string): Promise<Resolved> {
    try {
      const key = await this.store.keyFor(subject);
      this.lru.set(subject, key);
      return key;
    } catch (err) {
      if (!(err instanceof SubjectErasedError)) throw err;
      this.lru.set(subject, err);
      return err;
    }
  }
}

interface Waiting {
  event: ChangeEvent;
  send: (event: ChangeEvent) => void;
}

/** One session's FIFO in front of the producer. */
export class OrderedEncryptor {
  private readonly queue: Waiting[] = [];
  private draining: Promise<void> | undefined;

  constructor(
    private readonly keys: SubjectKeyCache,
    private readonly opts: { signal: AbortSignal; backoff: BackoffPolicy; logger: Logger; random: () => number; onKeyRead?: () => void },
  ) {}

  /** Events waiting for a key. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Encrypts and sends `event` now if nothing waits and its keys are known, else after the events ahead of it. */
  submit(event: ChangeEvent, send: (event: ChangeEvent) => void): void {
    if (this.queue.length === 0) {
      const subjects = subjectsOf(event);
      if (subjects.length === 0) return send(event); // most events: nothing personal
      const known = this.knownKeys(event, subjects);
      if (known) {
        encryptEvent(event, (s) => known.get(s)!);
        send(event);
        return;
      }
    }
    this.queue.push({ event, send });
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
  }

  /** Resolves once nothing waits (or the session ended). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private knownKeys(event: ChangeEvent, subjects = subjectsOf(event)): Map<string, Resolved> | undefined {
    const keys = new Map<string, Resolved>();
    for (const s of subjects) {
      const k = this.keys.peek(s);
      if (!k) return undefined;
      keys.set(s, k);
    }
    return keys;
  }

  private async drain(): Promise<void> {
    const { signal } = this.opts;
    while (this.queue.length > 0 && !signal.aborted) {
      const head = this.queue[0]!;
      let known = this.knownKeys(head.event);
      if (!known) {
        // Read the keys of everything waiting at once: one round trip for a burst of new subjects.
        const missing = [...new Set(this.queue.flatMap((w) => subjectsOf(w.event)))].filter((s) => !this.keys.peek(s));
        this.opts.onKeyRead?.();
        try {
          await retry(() => Promise.all(missing.map((s) => this.keys.load(s))), {
            policy: this.opts.backoff,
            signal,
            shouldRetry: () => true,
            random: this.opts.random,
            onRetry: (err) => this.opts.logger.warn({ err: (err as Error).message }, 'reading subject keys failed; retrying'),
          });
        } catch {
          return; // the session ended: what waits is read again by the next one
        }
        known = this.knownKeys(head.event);
        if (!known) continue; // expired meanwhile (a tiny TTL): read again
      }
      this.queue.shift();
      encryptEvent(head.event, (s) => known.get(s)!);
      head.send(head.event);
    }
  }
}
