// The replay API client (schemas/CONTRACTS.md "Replay API"): one page of a project's changelog
// after a seq, mapped onto the outcomes the subscription machine knows.
import { DecodeError, parseReplay, type ReplayBody } from './decode.js';

export type ReplayOutcome = ReplayBody | { kind: 'unauthorized' | 'forbidden' | 'transient'; detail: string };

export interface ReplayRequest {
  replayUrl: string;
  workspaceId: string;
  projectId: string;
  after: number;
  limit: number;
  token: string;
  timeoutMs: number;
}

/** `forms=thin`: this SDK reads thin changelog entries (decode.ts parseReplay); the router withholds them from clients that do not say so. */
export function replayRequestUrl(r: Pick<ReplayRequest, 'replayUrl' | 'workspaceId' | 'projectId' | 'after' | 'limit'>): string {
  const base = r.replayUrl.replace(/\/+$/, '');
  return `${base}/v1/workspaces/${encodeURIComponent(r.workspaceId)}/projects/${encodeURIComponent(r.projectId)}/changes?after=${r.after}&limit=${r.limit}&forms=thin`;
}

export async function fetchReplay(r: ReplayRequest): Promise<ReplayOutcome> {
  let response: Response;
  try {
    response = await fetch(replayRequestUrl(r), {
      headers: { authorization: `Bearer ${r.token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(r.timeoutMs),
    });
  } catch (err) {
    return { kind: 'transient', detail: `replay request failed: ${String(err)}` };
  }
  const { status } = response;
  if (status === 401) return { kind: 'unauthorized', detail: '401 from the replay API' };
  if (status === 403) return { kind: 'forbidden', detail: '403 from the replay API' };
  if (status !== 200 && status !== 410) {
    await response.body?.cancel();
    return { kind: 'transient', detail: `replay API answered ${status}` };
  }
  try {
    return parseReplay(status, await response.json());
  } catch (err) {
    return { kind: 'transient', detail: err instanceof DecodeError ? `malformed replay body: ${err.message}` : String(err) };
  }
}
