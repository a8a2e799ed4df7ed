// Hot workspaces (docs/ARCHITECTURE.md): a workspace is one partition key, so it lives on one Kinesis shard
// and can never carry more than that shard's write limit (1,000 records/s or 1 MiB/s). This
// tracker measures what capture actually put on Kinesis — records and bytes as sent, i.e. after
// aggregation and compression — per workspace over a sliding window, and says when a workspace
// becomes hot (utilization reaches `threshold`) and when it cools down (drops below `clearBelow`).
// Pure: time is passed in, nothing is logged or exported here (producer.ts reports).
//
// A workspace's utilization is a LOWER BOUND of its shard's: several workspaces hash to the same
// shard, and other capture instances (one per source database) write to the same stream. When
// PutRecords tells us the shard a record landed on, the same accounting runs per shard too (still a
// lower bound across capture instances, but it sums this instance's workspaces on each shard).

/** Kinesis write limits of one shard. */
export interface ShardLimits {
  recordsPerSecond: number;
  bytesPerSecond: number;
}

export const KINESIS_SHARD_LIMITS: ShardLimits = { recordsPerSecond: 1000, bytesPerSecond: 1024 * 1024 };

export interface HotWorkspaceOptions {
  /** Length of the sliding window the rates are averaged over. */
  windowMs: number;
  /** Utilization (0–1 of the shard limit) at which a key becomes hot. */
  threshold: number;
  /** A hot key cools down once its utilization is below this (hysteresis: < threshold). */
  clearBelow: number;
  /** At most this many keys of each scope are tracked (memory bound). */
  maxTracked: number;
  limits?: ShardLimits;
}

export type Scope = 'workspace' | 'shard';

export interface Usage {
  recordsPerSecond: number;
  bytesPerSecond: number;
  /** max(records/s ÷ record limit, bytes/s ÷ byte limit). */
  utilization: number;
}

export interface HotTransition extends Usage {
  scope: Scope;
  key: string;
  state: 'hot' | 'cooled';
}

/** One record Kinesis acknowledged: its partition key, size as sent, and the shard if known. */
export interface AcknowledgedRecord {
  partitionKey: string;
  /** Data plus partition key bytes: what counts against the shard's byte limit. */
  bytes: number;
  shardId?: string;
}

/** The window is kept as this many buckets per key: memory per key is fixed, the rate exact to one bucket. */
const BUCKETS = 10;

interface KeyWindow {
  /** Absolute bucket number (floor(t / bucketMs)) each ring slot currently holds. */
  bucketOf: Float64Array;
  records: Float64Array;
  bytes: Float64Array;
  lastAt: number;
  hot: boolean;
}

/** Per-key sliding-window rates with hot/cooled transitions, for one scope. */
class KeyedLoad {
  /** Map order = least recently recorded first (a recorded key is moved to the end). */
  private readonly keys = new Map<string, KeyWindow>();
  private readonly bucketMs: number;

  constructor(
    private readonly scope: Scope,
    private readonly opts: Required<HotWorkspaceOptions>,
  ) {
    this.bucketMs = opts.windowMs / BUCKETS;
  }

  get size(): number {
    return this.keys.size;
  }

  record(key: string, records: number, bytes: number, nowMs: number): void {
    let w = this.keys.get(key);
    if (w) {
      this.keys.delete(key);
    } else {
      if (this.keys.size >= this.opts.maxTracked && !this.evictColdest()) return;
      w = { bucketOf: new Float64Array(BUCKETS).fill(-1), records: new Float64Array(BUCKETS), bytes: new Float64Array(BUCKETS), lastAt: nowMs, hot: false };
    }
    this.keys.set(key, w);
    // The wall clock can step back; a sample placed in an older bucket would overwrite newer ones.
    const at = Math.max(nowMs, w.lastAt);
    w.lastAt = at;
    const bucket = Math.floor(at / this.bucketMs);
    const slot = ((bucket % BUCKETS) + BUCKETS) % BUCKETS;
    if (w.bucketOf[slot] !== bucket) {
      w.bucketOf[slot] = bucket;
      w.records[slot] = 0;
      w.bytes[slot] = 0;
    }
    w.records[slot]! += records;
    w.bytes[slot]! += bytes;
  }

  /** Transitions since the last call; forgets keys idle for a whole window (they are at rate 0). */
  evaluate(nowMs: number, out: HotTransition[]): number {
    let max = 0;
    for (const [key, w] of this.keys) {
      const usage = this.usageOf(w, nowMs);
      max = Math.max(max, usage.utilization);
      if (!w.hot && usage.utilization >= this.opts.threshold) {
        w.hot = true;
        out.push({ scope: this.scope, key, state: 'hot', ...usage });
      } else if (w.hot && usage.utilization < this.opts.clearBelow) {
        w.hot = false;
        out.push({ scope: this.scope, key, state: 'cooled', ...usage });
      }
      if (!w.hot && nowMs - w.lastAt >= this.opts.windowMs) this.keys.delete(key);
    }
    return max;
  }

  hot(nowMs: number): (Usage & { key: string })[] {
    return [...this.keys].filter(([, w]) => w.hot).map(([key, w]) => ({ key, ...this.usageOf(w, nowMs) }));
  }

  /**
   * Rates over the buckets still in the window, divided by the time those buckets span up to now
   * (between 9 and 10 buckets' worth). A key seen for the first time is thus averaged over the
   * whole window, not over the instant it appeared: one large record is not a 1 GB/s spike.
   */
  private usageOf(w: KeyWindow, nowMs: number): Usage {
    const current = Math.floor(nowMs / this.bucketMs);
    const oldest = current - BUCKETS + 1;
    let records = 0;
    let bytes = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const b = w.bucketOf[i]!;
      if (b >= oldest && b <= current) {
        records += w.records[i]!;
        bytes += w.bytes[i]!;
      }
    }
    const seconds = (nowMs - oldest * this.bucketMs) / 1000;
    const recordsPerSecond = records / seconds;
    const bytesPerSecond = bytes / seconds;
    const { limits } = this.opts;
    return { recordsPerSecond, bytesPerSecond, utilization: Math.max(recordsPerSecond / limits.recordsPerSecond, bytesPerSecond / limits.bytesPerSecond) };
  }

  /**
   * Makes room for a new key by forgetting the least recently recorded one that is not hot (a hot
   * key must stay until it is reported cooled). False when every tracked key is hot: then the new
   * key goes untracked — with maxTracked far above what capture's throughput can make hot, only
   * in theory.
   */
  private evictColdest(): boolean {
    for (const [key, w] of this.keys) {
      if (w.hot) continue;
      this.keys.delete(key);
      return true;
    }
    return false;
  }
}

export class HotWorkspaceTracker {
  private readonly workspaces: KeyedLoad;
  private readonly shards: KeyedLoad;
  private maxWorkspaceUtilization = 0;

  constructor(opts: HotWorkspaceOptions) {
    if (!(opts.windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${opts.windowMs}`);
    if (!(opts.threshold > 0)) throw new RangeError(`threshold must be > 0, got ${opts.threshold}`);
    if (!(opts.clearBelow > 0 && opts.clearBelow < opts.threshold)) throw new RangeError(`clearBelow must be > 0 and below threshold ${opts.threshold}, got ${opts.clearBelow}`);
    if (!(Number.isInteger(opts.maxTracked) && opts.maxTracked >= 1)) throw new RangeError(`maxTracked must be an integer >= 1, got ${opts.maxTracked}`);
    const full = { ...opts, limits: opts.limits ?? KINESIS_SHARD_LIMITS };
    this.workspaces = new KeyedLoad('workspace', full);
    this.shards = new KeyedLoad('shard', full);
  }

  /** Counts records Kinesis acknowledged at `nowMs`. */
  recordAcknowledged(records: readonly AcknowledgedRecord[], nowMs: number): void {
    for (const r of records) {
      this.workspaces.record(r.partitionKey, 1, r.bytes, nowMs);
      if (r.shardId !== undefined) this.shards.record(r.shardId, 1, r.bytes, nowMs);
    }
  }

  /** Keys that became hot or cooled since the last call, workspaces first. */
  evaluate(nowMs: number): HotTransition[] {
    const out: HotTransition[] = [];
    this.maxWorkspaceUtilization = this.workspaces.evaluate(nowMs, out);
    this.shards.evaluate(nowMs, out);
    return out;
  }

  /** The highest workspace utilization at the last `evaluate` (hot or not). */
  get maxUtilization(): number {
    return this.maxWorkspaceUtilization;
  }

  /** Keys reported hot and not yet cooled, with their current usage. */
  hot(scope: Scope, nowMs: number): (Usage & { key: string })[] {
    return (scope === 'workspace' ? this.workspaces : this.shards).hot(nowMs);
  }

  tracked(scope: Scope): number {
    return (scope === 'workspace' ? this.workspaces : this.shards).size;
  }
}
