// How Kinesis places a record on a shard, for tools that put dead letters back on the stream
// next to their workspace's other records (each consumer's redrive).
import { createHash } from 'node:crypto';

/** Kinesis maps a partition key to the 128-bit MD5 of it, as a decimal hash key. */
export function hashKeyOf(partitionKey: string): string {
  return BigInt(`0x${createHash('md5').update(partitionKey, 'utf8').digest('hex')}`).toString(10);
}

/** The workspace id of an envelope's JSON, if it has one. */
export function workspaceOf(payload: Uint8Array): string | undefined {
  try {
    const ws = (JSON.parse(Buffer.from(payload).toString('utf8')) as { workspaceid?: unknown }).workspaceid;
    return typeof ws === 'string' && ws !== '' ? ws : undefined;
  } catch {
    return undefined;
  }
}
