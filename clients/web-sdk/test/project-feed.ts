// Test double of the server side that follows schemas/CONTRACTS.md: a per-project committed
// history with dense seqs, MQTT batches published through the broker's IoT data-plane route
// (POST /topics/{topic}), and the replay API (200 / 410 / 401 / 403). Used where the real router
// is not part of the test; the broker is always a real one.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { ChangeEvent, FullChange } from '../src/types.js';

export interface FeedOptions {
  /** Base URL of the broker's publish route (Broker.publishUrl). */
  publishUrl: string;
  /** Which bearer tokens the replay API accepts. */
  acceptToken?: (token: string) => boolean;
}

interface ProjectLog {
  changes: FullChange[];
  /** Lowest seq the changelog still serves. */
  oldest: number;
}

let lsn = 0x16b374d8;

export function makeEvent(ws: string, project: string, seq: number): ChangeEvent {
  lsn += 0x40;
  const id = crypto.randomUUID();
  return {
    specversion: '1.0',
    id: `${lsn.toString(16).toUpperCase().padStart(16, '0')}-00000000`,
    source: '//taskflow/capture/test',
    type: 'taskflow.task.updated',
    time: new Date().toISOString(),
    subject: `tasks/${id}`,
    dataschema: 'taskflow://schemas/task/v1',
    datacontenttype: 'application/json',
    workspaceid: ws,
    projectid: project,
    data: {
      op: 'u',
      table: 'tasks',
      key: { id },
      before: null,
      after: { id, workspace_id: ws, project_id: project, title: `change ${seq}` },
      changed: ['title'],
      source: { db: 'taskflow', lsn: `0/${lsn.toString(16).toUpperCase()}`, xid: seq, txIndex: 0, txSize: 1, snapshot: false },
    },
  };
}

export class ProjectFeed {
  readonly forbidden = new Set<string>();
  private readonly logs = new Map<string, ProjectLog>();
  private server!: Server;
  replayUrl = '';
  replayRequests = 0;
  /** Replay requests being answered now, and the most at once (answers wait `replayDelayMs`). */
  replayInFlight = 0;
  replayPeakInFlight = 0;
  replayDelayMs = 0;

  constructor(private readonly options: FeedOptions) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      // Browsers call the replay API cross-origin with an Authorization header.
      res.setHeader('access-control-allow-origin', '*');
      res.setHeader('access-control-allow-headers', 'authorization');
      if (req.method === 'OPTIONS') {
        res.writeHead(204).end();
        return;
      }
      this.serve(req.url ?? '/', req.headers.authorization, res);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.replayUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  history(ws: string, project: string): FullChange[] {
    return this.log(ws, project).changes;
  }

  /** Commits `n` changes (the changelog stores them first), then publishes them as one batch unless `publish` is false. */
  async commit(ws: string, project: string, n: number, how: { mode?: 'full' | 'thin'; gzip?: boolean; publish?: boolean } = {}): Promise<FullChange[]> {
    const log = this.log(ws, project);
    const added: FullChange[] = [];
    for (let i = 0; i < n; i += 1) {
      const seq = log.changes.length + 1;
      const change: FullChange = { seq, mode: 'full', event: makeEvent(ws, project, seq) };
      log.changes.push(change);
      added.push(change);
    }
    if (how.publish !== false) await this.publish(ws, project, added, how.mode ?? 'full', how.gzip ?? false);
    return added;
  }

  /** Publishes already committed changes again (a QoS 1 resend, or a router replaying). */
  async publish(ws: string, project: string, changes: readonly FullChange[], mode: 'full' | 'thin' = 'full', gzip = false): Promise<void> {
    if (changes.length === 0) return;
    const body = {
      v: 1,
      ws,
      project,
      mode,
      fromSeq: changes[0]!.seq,
      toSeq: changes[changes.length - 1]!.seq,
      changes: changes.map((c) =>
        mode === 'full'
          ? { seq: c.seq, event: c.event }
          : { seq: c.seq, id: c.event.id, type: c.event.type, time: c.event.time, key: c.event.data.key, changed: c.event.data.changed },
      ),
    };
    const json = Buffer.from(JSON.stringify(body));
    const topic = `taskflow/v1/ws/${ws}/projects/${project}`;
    const res = await fetch(`${this.options.publishUrl}/topics/${encodeURIComponent(topic)}?qos=1`, { method: 'POST', body: gzip ? gzipSync(json) : json });
    if (!res.ok) throw new Error(`publish failed: ${res.status} ${await res.text()}`);
  }

  /** The changelog forgets everything before `oldest`. */
  trim(ws: string, project: string, oldest: number): void {
    this.log(ws, project).oldest = oldest;
  }

  private log(ws: string, project: string): ProjectLog {
    const key = `${ws}/${project}`;
    let log = this.logs.get(key);
    if (!log) {
      log = { changes: [], oldest: 1 };
      this.logs.set(key, log);
    }
    return log;
  }

  private serve(url: string, authorization: string | undefined, res: import('node:http').ServerResponse): void {
    this.replayRequests += 1;
    this.replayInFlight += 1;
    this.replayPeakInFlight = Math.max(this.replayPeakInFlight, this.replayInFlight);
    const reply = (status: number, body: unknown): void => {
      setTimeout(() => {
        this.replayInFlight -= 1;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      }, this.replayDelayMs);
    };
    const u = new URL(url, 'http://x');
    const m = /^\/v1\/workspaces\/([^/]+)\/projects\/([^/]+)\/changes$/.exec(u.pathname);
    if (!m) return reply(404, { error: 'not_found' });
    const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
    if (token === undefined || !(this.options.acceptToken?.(token) ?? true)) return reply(401, { error: 'unauthorized' });
    const ws = decodeURIComponent(m[1]!);
    const project = decodeURIComponent(m[2]!);
    if (this.forbidden.has(project)) return reply(403, { error: 'forbidden' });
    const after = Number(u.searchParams.get('after') ?? '0');
    const limit = Math.min(1000, Number(u.searchParams.get('limit') ?? '100'));
    const log = this.log(ws, project);
    const latestSeq = log.changes.length;
    if (after + 1 < log.oldest) return reply(410, { error: 'resync_required', oldestSeq: log.oldest, latestSeq });
    reply(200, { changes: log.changes.slice(after, after + limit).map((c) => ({ seq: c.seq, event: c.event })), latestSeq });
  }
}
