// The replay API over HTTP (schemas/CONTRACTS.md "Replay API"):
//   GET /v1/workspaces/{ws}/projects/{project}/changes?after={seq}&limit={n}[&forms=thin]
// Bearer TaskFlow JWT; the same grant rule as the broker (lib/authz.ts canReadProject). Tokens,
// limits, request sizes and CORS are lib/http-api.ts's.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { canReadProject, type Membership } from '../lib/authz.js';
import { type ApiDeps, type ApiLimits, type ApiRoute, createApiHandler, startApiServer } from '../lib/http-api.js';
import type { TokenVerifier } from '../lib/jwt.js';
import type { Logger } from '../lib/logger.js';
import type { PerUserLimiter } from '../lib/user-limits.js';
import type { ChangelogEntry, ChangelogStore } from './changelog.js';
import { replayAnswer } from './replay.js';

export interface ReplayDeps {
  store: ChangelogStore;
  verify: TokenVerifier;
  memberships: (userId: string) => Promise<Membership[]>;
  maxLimit: number;
  /** Per-user rate, concurrency and changes-returned limits (429 beyond them). */
  limiter?: PerUserLimiter;
  limits?: Partial<ApiLimits>;
  /** Called once per answered request (the router counts them by outcome). */
  observe?: ApiDeps['observe'];
  logger?: Logger;
  /**
   * Each change as the browser may see it (the changelog holds them as they travelled): a full
   * one's personal fields decrypted, and in both forms what names an erased subject blanked.
   */
  prepare?: (change: ChangelogEntry) => Promise<ChangelogEntry>;
}

interface ReplayParams {
  workspaceId: string;
  projectId: string;
  after: number;
  limit: number;
  /** `forms=thin`: the client reads thin entries (router/replay.ts replayAnswer). */
  acceptsThin: boolean;
}

function changesRoute(deps: ReplayDeps): ApiRoute<ReplayParams, true> {
  return {
    method: 'GET',
    path: /^\/v1\/workspaces\/([^/]+)\/projects\/([^/]+)\/changes$/,
    ids: ['workspace', 'project'],
    parse([workspaceId = '', projectId = ''], query) {
      const after = Number(query.get('after') ?? '0');
      const limit = Math.min(deps.maxLimit, Number(query.get('limit') ?? String(deps.maxLimit)));
      if (!Number.isInteger(after) || after < 0 || !Number.isInteger(limit) || limit < 1) return { badRequest: 'after must be an integer ≥ 0 and limit an integer ≥ 1' };
      return { workspaceId, projectId, after, limit, acceptsThin: (query.get('forms') ?? '').split(',').includes('thin') };
    },
    authorize: (userId, memberships, p) => (canReadProject(userId, memberships, p.workspaceId, p.projectId) ? true : undefined),
    async handle({ params: { workspaceId, projectId, after, limit, acceptsThin } }) {
      const page = await deps.store.read({ workspaceId, projectId }, after, limit);
      // The user's budget is charged by the changes read (returned, or read for a 410): what a replay costs the router and the store.
      const served = page.entries.length;
      const answer = replayAnswer(page, after, acceptsThin);
      const prepare = deps.prepare;
      if (answer.status !== 200 || !prepare) return { ...answer, served };
      return { ...answer, served, body: { ...answer.body, changes: await Promise.all(answer.body.changes.map(prepare)) } };
    },
  };
}

export function createReplayHandler(deps: ReplayDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return createApiHandler({ name: 'replay', verify: deps.verify, memberships: deps.memberships, limiter: deps.limiter, limits: deps.limits, observe: deps.observe, logger: deps.logger }, [changesRoute(deps)]);
}

export function startReplayServer(deps: ReplayDeps, port: number, host = '127.0.0.1'): Promise<{ server: Server; url: string }> {
  return startApiServer(createReplayHandler(deps), port, host);
}
