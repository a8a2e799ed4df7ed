// MQTT messages to browsers (schemas/CONTRACTS.md "MQTT messages to browsers"): one project's
// sequenced changes as one or more messages, each within the broker's size limit (IoT Core:
// 128 KB), in seq order, in `full` or `thin` mode, optionally gzipped.
import { gzipSync } from 'node:zlib';
import type { ProjectRef } from './changelog.js';
import type { SequencedChange } from './sequencer.js';

export type PayloadMode = 'full' | 'thin';

export interface MessageOptions {
  mode: PayloadMode;
  gzip: boolean;
  maxBytes: number;
}

export const IOT_CORE_MAX_MESSAGE_BYTES = 128 * 1024;

export interface OutboundMessage {
  topic: string;
  payload: Buffer;
  fromSeq: number;
  toSeq: number;
  count: number;
  /** Commit times (ms) of the changes, for the commit-to-publish histogram. */
  commitTimes: number[];
}

export function projectTopic(p: ProjectRef): string {
  return `taskflow/v1/ws/${p.workspaceId}/projects/${p.projectId}`;
}

function thinChange(c: SequencedChange): Record<string, unknown> {
  const e = c.event.envelope;
  const thin: Record<string, unknown> = { seq: c.seq, id: e.id, type: e.type, time: e.time, key: e.data.key ?? null };
  if (Array.isArray(e.data.changed)) thin.changed = e.data.changed;
  return thin;
}

function encodeOne(project: ProjectRef, changes: readonly SequencedChange[], mode: PayloadMode, gzip: boolean): Buffer {
  const first = changes[0];
  const last = changes[changes.length - 1];
  const body = {
    v: 1,
    ws: project.workspaceId,
    project: project.projectId,
    mode,
    fromSeq: first?.seq ?? 0,
    toSeq: last?.seq ?? 0,
    changes: changes.map((c) => (mode === 'full' ? { seq: c.seq, event: c.event.envelope } : thinChange(c))),
  };
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  return gzip ? gzipSync(json) : json;
}

function toMessage(project: ProjectRef, changes: readonly SequencedChange[], payload: Buffer): OutboundMessage {
  return {
    topic: projectTopic(project),
    payload,
    fromSeq: changes[0]?.seq ?? 0,
    toSeq: changes[changes.length - 1]?.seq ?? 0,
    count: changes.length,
    commitTimes: changes.map((c) => Date.parse(c.event.envelope.time)),
  };
}

/**
 * Splits `changes` (seq order) into messages no larger than maxBytes. A single change too large
 * for a full message goes out thin: the browser fetches it through the replay API.
 */
export function encodeMessages(project: ProjectRef, changes: readonly SequencedChange[], opts: MessageOptions): OutboundMessage[] {
  const out: OutboundMessage[] = [];
  // First cut by raw JSON size; gzip usually shrinks JSON several-fold, so allow more before checking.
  const rawBudget = opts.gzip ? opts.maxBytes * 4 : opts.maxBytes;
  let chunk: SequencedChange[] = [];
  let chunkBytes = 200;
  for (const c of changes) {
    const size = JSON.stringify(opts.mode === 'full' ? c.event.envelope : thinChange(c)).length + 30;
    if (chunk.length > 0 && chunkBytes + size > rawBudget) {
      emit(chunk);
      chunk = [];
      chunkBytes = 200;
    }
    chunk.push(c);
    chunkBytes += size;
  }
  if (chunk.length > 0) emit(chunk);
  return out;

  function emit(part: SequencedChange[]): void {
    const payload = encodeOne(project, part, opts.mode, opts.gzip);
    if (payload.length <= opts.maxBytes) {
      out.push(toMessage(project, part, payload));
    } else if (part.length > 1) {
      const mid = Math.ceil(part.length / 2);
      emit(part.slice(0, mid));
      emit(part.slice(mid));
    } else {
      out.push(toMessage(project, part, encodeOne(project, part, 'thin', opts.gzip)));
    }
  }
}
