// Reads of one shard gathered into one staged batch (pure: time passed in). The changelog gets one
// item per project per staged batch, so staging each read wrote one item per project per read:
// enhanced fan-out pushes small reads every few tens of ms, which made that ~0.4 PutItems per
// change. Gathered over the batch window (ROUTER_BATCH_WINDOW_MS) a project gets one item per
// window, as it gets one message per window from the batcher. The window opens at the arrival
// time of its oldest record (the batcher's opens at the commit time): an old read — a poll after
// its spacing, a backlog — is due at once, so only reads younger than the window wait. Records
// keep their order, and the window is staged whole: nothing of it is checkpointed before all of
// it is in the changelog and published.

export interface ReadWindowOptions {
  /** 0: every read is due at once (staged alone). */
  windowMs: number;
  /** A window holding this many records is due at once (bounds one staging's synchronous work). */
  maxRecords: number;
}

export interface TakenWindow<R, T> {
  records: R[];
  /** The tag of the last read in the window (its checkpointer). */
  last: T;
}

export class ReadWindow<R, T> {
  private records: R[] = [];
  private last: T | undefined;
  private due: number | undefined;

  constructor(private readonly opts: ReadWindowOptions) {}

  /** `openedAtMs`: the arrival time of the read's oldest record (now when unknown). */
  add(records: readonly R[], tag: T, openedAtMs: number, now: number): void {
    if (records.length === 0) return;
    for (const r of records) this.records.push(r);
    this.last = tag;
    this.due ??= Math.min(now, openedAtMs) + this.opts.windowMs;
  }

  /** When the window is due (undefined while empty). */
  get dueAt(): number | undefined {
    return this.due;
  }

  isDue(now: number): boolean {
    return this.due !== undefined && (this.due <= now || this.records.length >= this.opts.maxRecords);
  }

  get size(): number {
    return this.records.length;
  }

  /** Everything read since the last take, in read order; undefined when nothing was. */
  take(): TakenWindow<R, T> | undefined {
    if (this.last === undefined || this.records.length === 0) return undefined;
    const taken = { records: this.records, last: this.last };
    this.records = [];
    this.last = undefined;
    this.due = undefined;
    return taken;
  }
}
