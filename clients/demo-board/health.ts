// The pipeline health page's figures, from the services' own Prometheus metrics: the board's
// server scrapes each /metrics every few seconds (HealthSampler) and turns two scrapes a window
// apart into one point per chart (healthPoint, pure). The same metric names feed the production
// Grafana dashboard (infra/dashboard.ts); a test keeps the two lists in step.

export interface Sample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/**
 * Prometheus text exposition format (0.0.4): `name{a="b",...} value [timestamp]`. A counter that
 * is declared (`# TYPE x counter`) but has no sample yet, as prom-client writes a labelled counter
 * never incremented, reads as one sample of 0: the page shows "0 dead letters", not "no data".
 */
export function parsePrometheusText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const counter = /^# TYPE (\S+) counter$/.exec(line);
    if (counter) out.push({ name: counter[1]!, labels: {}, value: 0 });
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+-?\d+)?$/.exec(line);
    if (!m) continue;
    const value = parseValue(m[3]!);
    if (value === undefined) continue;
    out.push({ name: m[1]!, labels: m[2] ? parseLabels(m[2].slice(1, -1)) : {}, value });
  }
  return out;
}

function parseValue(v: string): number | undefined {
  if (v === '+Inf') return Number.POSITIVE_INFINITY;
  if (v === '-Inf') return Number.NEGATIVE_INFINITY;
  const n = Number(v);
  return Number.isNaN(n) && v !== 'NaN' ? undefined : n;
}

function parseLabels(body: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body))) labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  return labels;
}

/** Every metric the page reads, by what it shows. */
export const HEALTH_METRICS = {
  commitToClient: 'taskflow_board_commit_to_client_seconds',
  commitToPublish: 'taskflow_router_commit_to_publish_seconds',
  captureLag: 'taskflow_capture_replication_lag_seconds',
  iteratorAge: 'kinesis_consumer_millis_behind_latest',
  deadLetters: ['taskflow_capture_dead_letters_total', 'taskflow_router_dlq_total', 'taskflow_search_dlq_total', 'taskflow_audit_dlq_total', 'taskflow_archiver_dlq_total'],
  messagesPublished: 'taskflow_router_messages_published_total',
  changesPublished: 'taskflow_router_changes_published_total',
} as const;

export interface Scrape {
  at: number;
  samples: readonly Sample[];
}

/** One point per chart; a figure is null when nothing measured it in the window. */
export interface HealthPoint {
  at: number;
  /** p50/p95 over the window, milliseconds: browsers' commit → screen (the board reports it), the router's commit → publish. */
  commitToClientMs: { p50: number | null; p95: number | null };
  commitToPublishMs: { p50: number | null; p95: number | null };
  captureLagSeconds: number | null;
  /** Per consumer, the shard furthest behind. */
  iteratorAgeMs: Record<string, number>;
  /** Dead letters written, per metric (cumulative since each service started). */
  deadLetters: Record<string, number>;
  /** MQTT messages published per change published, in the window. */
  messagesPerChange: number | null;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const named = (s: Scrape | undefined, name: string) => (s ? s.samples.filter((x) => x.name === name) : []);
const total = (s: Scrape | undefined, name: string) => sum(named(s, name).map((x) => x.value));

/**
 * histogram_quantile over the increase between two scrapes of a histogram, summed over every
 * label but `le` (Prometheus' linear interpolation inside the bucket; the lowest bucket from 0).
 * Counters that went down (a restarted service) count from zero.
 */
export function histogramQuantile(q: number, now: Scrape, before: Scrape | undefined, metric: string): number | null {
  const buckets = new Map<number, number>();
  const add = (s: Scrape | undefined, sign: 1 | -1) => {
    for (const x of named(s, `${metric}_bucket`)) {
      const le = parseValue(x.labels.le ?? '');
      if (le === undefined) continue;
      buckets.set(le, (buckets.get(le) ?? 0) + sign * x.value);
    }
  };
  add(now, 1);
  const increase = new Map(buckets);
  if (before) {
    buckets.clear();
    add(before, 1);
    const dropped = [...buckets].some(([le, v]) => v > (increase.get(le) ?? 0));
    if (!dropped) for (const [le, v] of buckets) increase.set(le, (increase.get(le) ?? 0) - v);
  }
  const sorted = [...increase].sort((a, b) => a[0] - b[0]);
  const count = sorted.at(-1)?.[1] ?? 0;
  if (!sorted.length || count <= 0 || sorted.at(-1)![0] !== Number.POSITIVE_INFINITY) return null;
  const rank = q * count;
  let lowerLe = 0;
  let lowerCount = 0;
  for (const [le, c] of sorted) {
    if (c >= rank) {
      if (le === Number.POSITIVE_INFINITY) return lowerLe; // beyond the last finite bucket: its bound, as Prometheus does
      return c === lowerCount ? le : lowerLe + ((le - lowerLe) * (rank - lowerCount)) / (c - lowerCount);
    }
    lowerLe = le;
    lowerCount = c;
  }
  return null;
}

/** The increase of a counter between two scrapes (a reset counts from zero). */
function increase(now: Scrape, before: Scrape | undefined, name: string): number {
  const a = total(now, name);
  const b = total(before, name);
  return a >= b ? a - b : a;
}

const ms = (seconds: number | null) => (seconds === null ? null : Math.round(seconds * 1000));

export function healthPoint(now: Scrape, before: Scrape | undefined): HealthPoint {
  const lag = named(now, HEALTH_METRICS.captureLag).map((x) => x.value);
  const iteratorAgeMs: Record<string, number> = {};
  for (const x of named(now, HEALTH_METRICS.iteratorAge)) {
    const consumer = x.labels.consumer ?? '?';
    iteratorAgeMs[consumer] = Math.max(iteratorAgeMs[consumer] ?? 0, x.value);
  }
  const deadLetters: Record<string, number> = {};
  for (const name of HEALTH_METRICS.deadLetters) if (named(now, name).length) deadLetters[name] = total(now, name);
  const changes = increase(now, before, HEALTH_METRICS.changesPublished);
  const latency = (metric: string) => ({ p50: ms(histogramQuantile(0.5, now, before, metric)), p95: ms(histogramQuantile(0.95, now, before, metric)) });
  return {
    at: now.at,
    commitToClientMs: latency(HEALTH_METRICS.commitToClient),
    commitToPublishMs: latency(HEALTH_METRICS.commitToPublish),
    captureLagSeconds: lag.length ? Math.max(...lag) : null,
    iteratorAgeMs,
    deadLetters,
    messagesPerChange: changes > 0 ? increase(now, before, HEALTH_METRICS.messagesPublished) / changes : null,
  };
}

export interface MetricsSource {
  name: string;
  url: string;
}

export interface SourceStatus extends MetricsSource {
  ok: boolean;
  error?: string;
}

/**
 * Scrapes every source each `everyMs`, keeps the scrapes of the last `windowMs` (a point compares
 * the newest with the oldest of them) and the last `keep` points for the charts.
 */
export class HealthSampler {
  private readonly scrapes: Scrape[] = [];
  private readonly points: HealthPoint[] = [];
  private statuses: SourceStatus[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sources: () => readonly MetricsSource[],
    private readonly opts: { everyMs: number; windowMs: number; keep: number; fetch?: typeof fetch; local?: () => Promise<string> },
  ) {}

  start(): void {
    const tick = () => {
      void this.sample().finally(() => (this.timer = setTimeout(tick, this.opts.everyMs)));
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  async sample(now = Date.now()): Promise<HealthPoint> {
    const get = this.opts.fetch ?? fetch;
    const sources = this.sources();
    const texts = await Promise.all(
      sources.map(async (s): Promise<[SourceStatus, string]> => {
        try {
          const r = await get(s.url, { signal: AbortSignal.timeout(2000) });
          if (!r.ok) return [{ ...s, ok: false, error: `HTTP ${r.status}` }, ''];
          return [{ ...s, ok: true }, await r.text()];
        } catch (err) {
          return [{ ...s, ok: false, error: err instanceof Error ? err.message : String(err) }, ''];
        }
      }),
    );
    this.statuses = texts.map(([status]) => status);
    const local = this.opts.local ? await this.opts.local() : '';
    const scrape: Scrape = { at: now, samples: [...texts.flatMap(([, text]) => parsePrometheusText(text)), ...parsePrometheusText(local)] };
    this.scrapes.push(scrape);
    while (this.scrapes.length > 1 && now - this.scrapes[0]!.at > this.opts.windowMs) this.scrapes.shift();
    const point = healthPoint(scrape, this.scrapes.length > 1 ? this.scrapes[0] : undefined);
    this.points.push(point);
    if (this.points.length > this.opts.keep) this.points.shift();
    return point;
  }

  snapshot(): { sources: SourceStatus[]; points: HealthPoint[]; everyMs: number; windowMs: number } {
    return { sources: this.statuses, points: [...this.points], everyMs: this.opts.everyMs, windowMs: this.opts.windowMs };
  }
}
