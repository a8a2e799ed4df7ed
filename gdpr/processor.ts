// The tombstone processor's per-request state machine (issue 13 §4):
//   requested → keys-destroyed → sinks-purged → verified → complete
// Every transition is one conditional save to the request store (compare-and-set on `version`),
// made only after the work it records is done, so a process killed at any point restarts from the
// last saved step and repeats at most the step it was in — which is why every step is idempotent
// (a destroy or purge repeated changes nothing more). A sink counts as verified only after its own
// scan found none of the subject's identifiers; a scan that finds some sends it back to pending.
import type { ErasureSink, SubjectIdentifiers } from '../lib/erasure.js';
import { TaskflowError } from '../lib/errors.js';
import { retry, type RetryOptions } from '../lib/retry.js';
import type { KeyDestruction, SubjectKeyStore } from '../lib/subject-keys.js';
import { ERASURE_DEADLINE_MS, POLICY_VERSION } from './policy.js';

export const STEPS = ['requested', 'keys-destroyed', 'sinks-purged', 'verified', 'complete'] as const;
export type Step = (typeof STEPS)[number];

export interface SinkProgress {
  state: 'pending' | 'purged' | 'verified';
  /** Rows/documents the purges changed, summed over attempts. */
  changed: number;
  /** The last scan's counts and time. */
  scanned?: number;
  found?: number;
  scannedAt?: string;
}

export interface ErasureRequest {
  requestId: string;
  subject: string;
  ticket: string;
  requestedBy: string;
  reason?: string;
  requestedAt: string;
  deadline: string;
  policyVersion: string;
  step: Step;
  /** Captured when the request is recorded, before anything is purged; dropped once complete. */
  identifiers?: SubjectIdentifiers;
  keyDestruction?: KeyDestruction;
  sinks: Record<string, SinkProgress>;
  completedAt?: string;
  /** Compare-and-set counter: every save must name the version it read. */
  version: number;
}

export interface RequestStore {
  get(requestId: string): Promise<ErasureRequest | null>;
  /** Creates the request unless one exists for the subject; returns the subject's request either way. */
  create(request: ErasureRequest): Promise<ErasureRequest>;
  /** Saves `next` if the stored version is still `next.version - 1`; false if another writer won. */
  save(next: ErasureRequest): Promise<boolean>;
  open(): Promise<ErasureRequest[]>;
}

export function newRequest(o: { requestId: string; ids: SubjectIdentifiers; ticket: string; requestedBy: string; reason?: string; now: Date; sinks: readonly string[] }): ErasureRequest {
  return {
    requestId: o.requestId,
    subject: o.ids.subject,
    ticket: o.ticket,
    requestedBy: o.requestedBy,
    ...(o.reason === undefined ? {} : { reason: o.reason }),
    requestedAt: o.now.toISOString(),
    deadline: new Date(o.now.getTime() + ERASURE_DEADLINE_MS).toISOString(),
    policyVersion: POLICY_VERSION,
    step: 'requested',
    identifiers: o.ids,
    sinks: Object.fromEntries(o.sinks.map((s) => [s, { state: 'pending', changed: 0 } satisfies SinkProgress])),
    version: 1,
  };
}

/** A scan still found the subject's data after a purge: the sink goes back to pending and is purged again. */
export class ResidualDataError extends TaskflowError {
  constructor(sink: string, found: number) {
    super('GDPR_RESIDUAL_DATA', `${sink}: the scan after purge still found ${found} item(s) holding the subject's identifiers`, { retriable: true, details: { sink, found } });
  }
}

/** Purge-and-rescan rounds one run gives a sink whose scan keeps finding data. */
export const MAX_REPURGES_PER_RUN = 3;

export interface ProcessorOptions {
  store: RequestStore;
  keys: Pick<SubjectKeyStore, 'destroy'>;
  sinks: readonly ErasureSink[];
  retry?: RetryOptions;
  now?: () => Date;
  /** Called after every durable save (tests inject crashes here). */
  afterSave?: (request: ErasureRequest) => void;
  onProgress?: (sink: string, done: number) => void;
}

export class ErasureProcessor {
  private readonly now: () => Date;
  constructor(private readonly o: ProcessorOptions) {
    this.now = o.now ?? (() => new Date());
  }

  /** Drives the request to complete from whatever step it was saved in. */
  async run(requestId: string): Promise<ErasureRequest> {
    const residues = new Map<string, number>();
    for (;;) {
      const r = await this.o.store.get(requestId);
      if (!r) throw new TaskflowError('GDPR_UNKNOWN_REQUEST', `no erasure request ${requestId}`);
      if (r.step === 'complete') return r;
      await this.step(r, residues);
    }
  }

  private async step(r: ErasureRequest, residues: Map<string, number>): Promise<void> {
    const ids = r.identifiers;
    if (!ids) throw new TaskflowError('GDPR_NO_IDENTIFIERS', `request ${r.requestId} lost its identifiers before completing`);
    switch (r.step) {
      case 'requested': {
        const keyDestruction = await this.attempt(() => this.o.keys.destroy(r.subject));
        return this.save({ ...r, keyDestruction, step: 'keys-destroyed' });
      }
      case 'keys-destroyed': {
        const sink = this.o.sinks.find((s) => r.sinks[s.sink]?.state === 'pending');
        if (!sink) return this.save({ ...r, step: 'sinks-purged' });
        const { changed } = await this.attempt(() => sink.purge(ids, (done) => this.o.onProgress?.(sink.sink, done)));
        const prev = r.sinks[sink.sink]!;
        return this.save({ ...r, sinks: { ...r.sinks, [sink.sink]: { ...prev, state: 'purged', changed: prev.changed + changed } } });
      }
      case 'sinks-purged': {
        const sink = this.o.sinks.find((s) => r.sinks[s.sink]?.state === 'purged');
        if (!sink) return this.save({ ...r, step: 'verified' });
        const { scanned, found } = await this.attempt(() => sink.scan(ids));
        const prev = r.sinks[sink.sink]!;
        const scan = { scanned, found, scannedAt: this.now().toISOString() };
        if (found === 0) return this.save({ ...r, sinks: { ...r.sinks, [sink.sink]: { ...prev, ...scan, state: 'verified' } } });
        // Back to purging: the record says what the scan saw, then the purge runs again — a few
        // times per run; a sink that keeps its data stops the run (the service retries it later).
        await this.save({ ...r, step: 'keys-destroyed', sinks: { ...r.sinks, [sink.sink]: { ...prev, ...scan, state: 'pending' } } });
        const times = (residues.get(sink.sink) ?? 0) + 1;
        residues.set(sink.sink, times);
        if (times >= MAX_REPURGES_PER_RUN) throw new ResidualDataError(sink.sink, found);
        return;
      }
      case 'verified': {
        // The plaintext captured for the scans is personal data too: it goes once nothing needs it.
        const { identifiers: _dropped, ...rest } = r;
        return this.save({ ...rest, step: 'complete', completedAt: this.now().toISOString() });
      }
    }
  }

  private attempt<T>(work: () => Promise<T>): Promise<T> {
    return retry(work, { shouldRetry: () => true, maxAttempts: 8, ...this.o.retry });
  }

  private async save(next: ErasureRequest): Promise<void> {
    const saved = { ...next, version: next.version + 1 };
    if (!(await this.o.store.save(saved))) throw new TaskflowError('GDPR_CONCURRENT_UPDATE', `request ${next.requestId} was changed by another processor`, { retriable: true });
    this.o.afterSave?.(saved);
  }
}

/** An in-process store (tests; the durable one is DynamoDB). Copies on the way in and out, as a database would. */
export class MemoryRequestStore implements RequestStore {
  private readonly items = new Map<string, string>();
  get(requestId: string): Promise<ErasureRequest | null> {
    const s = this.items.get(requestId);
    return Promise.resolve(s ? (JSON.parse(s) as ErasureRequest) : null);
  }
  async create(request: ErasureRequest): Promise<ErasureRequest> {
    const existing = [...this.items.values()].map((s) => JSON.parse(s) as ErasureRequest).find((r) => r.subject === request.subject);
    if (existing) return existing;
    this.items.set(request.requestId, JSON.stringify(request));
    return (await this.get(request.requestId))!;
  }
  async save(next: ErasureRequest): Promise<boolean> {
    const cur = await this.get(next.requestId);
    if (!cur || cur.version !== next.version - 1) return false;
    this.items.set(next.requestId, JSON.stringify(next));
    return true;
  }
  open(): Promise<ErasureRequest[]> {
    return Promise.resolve([...this.items.values()].map((s) => JSON.parse(s) as ErasureRequest).filter((r) => r.step !== 'complete'));
  }
}
