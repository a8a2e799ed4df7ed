// The search API over HTTP:
//   GET /v1/workspaces/{ws}/search?q=<words>&label=<l>&due_after=<iso>&due_before=<iso>&limit=<n>
// q, or at least one filter: label (repeatable, every one must be on the task), due_after
// (inclusive) and due_before (exclusive) bound due_at. A filter narrows to tasks.
// Bearer TaskFlow JWT (401 without a valid one); the user's memberships, from the index's own
// projection, decide through lib/authz.ts readableProjects which projects' tasks and comments a
// query may return (403 with no membership in the workspace). Tokens, per-user limits, request
// sizes and CORS are lib/http-api.ts's.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { readableProjects } from '../lib/authz.js';
import { TaskflowError } from '../lib/errors.js';
import { type ApiLimits, type ApiRoute, createApiHandler, startApiServer } from '../lib/http-api.js';
import type { TokenVerifier } from '../lib/jwt.js';
import type { Logger } from '../lib/logger.js';
import type { PerUserLimiter } from '../lib/user-limits.js';
import type { QueryMetrics } from './metrics.js';
import { hasFilter, parseQueryTerms, parseSearchFilter, type SearchFilter, type SearchIndex } from './search-index.js';

export interface SearchApiDeps {
  index: SearchIndex;
  verify: TokenVerifier;
  /** Upper bound of `limit`, and its default. */
  maxResults: number;
  /** Per-user rate and concurrency limits (429 beyond them). */
  limiter?: PerUserLimiter;
  limits?: Partial<ApiLimits>;
  metrics?: QueryMetrics;
  logger?: Logger;
}

interface SearchParams {
  workspaceId: string;
  terms: string[];
  filter: SearchFilter;
  limit: number;
}

function searchRoute(deps: SearchApiDeps): ApiRoute<SearchParams, 'all' | string[]> {
  return {
    method: 'GET',
    path: /^\/v1\/workspaces\/([^/]+)\/search$/,
    ids: ['workspace'],
    parse([workspaceId = ''], query) {
      let terms: string[];
      let filter: SearchFilter;
      try {
        filter = parseSearchFilter(query);
        const q = query.get('q');
        terms = q === null && hasFilter(filter) ? [] : parseQueryTerms(q ?? '');
      } catch (err) {
        if (!(err instanceof TaskflowError)) throw err;
        return { badRequest: err.message };
      }
      const limitParam = query.get('limit');
      const limit = limitParam === null ? deps.maxResults : Number(limitParam);
      if (!Number.isInteger(limit) || limit < 1 || limit > deps.maxResults) return { badRequest: `limit must be an integer from 1 to ${deps.maxResults}` };
      return { workspaceId, terms, filter, limit };
    },
    authorize(userId, memberships, { workspaceId }) {
      const projects = readableProjects(userId, memberships, workspaceId);
      return projects === 'all' || projects.length > 0 ? projects : undefined;
    },
    async handle({ params: { workspaceId, terms, filter, limit }, grant: projects }) {
      const hits = await deps.index.search({ workspaceId, terms, filter, projects, limit });
      return {
        status: 200,
        body: {
          hits: hits.map((h) => ({ type: h.table === 'tasks' ? 'task' : 'comment', id: h.id, projectId: h.projectId, taskId: h.taskId, title: h.title, text: h.text, status: h.status, labels: h.labels, dueAt: h.dueAt, version: h.version, score: h.score })),
          limit,
        },
      };
    },
  };
}

export function createSearchHandler(deps: SearchApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return createApiHandler(
    {
      name: 'search',
      verify: deps.verify,
      memberships: (userId) => deps.index.memberships(userId),
      limiter: deps.limiter,
      limits: deps.limits,
      observe: deps.metrics ? (outcome, seconds) => deps.metrics?.query(outcome, seconds) : undefined,
      logger: deps.logger,
    },
    [searchRoute(deps)],
  );
}

export function startSearchServer(deps: SearchApiDeps, port: number, host = '127.0.0.1'): Promise<{ server: Server; url: string }> {
  return startApiServer(createSearchHandler(deps), port, host);
}
