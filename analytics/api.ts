// The warehouse's read-only analytics API (served by the loader, the one process that may open
// the DuckDB file), for the board's analytics page:
//   GET /v1/workspaces/{ws}/analytics/changes-per-minute?minutes=<1..240, default 60>
//   GET /v1/workspaces/{ws}/analytics/freshness
// Tokens, per-user limits, sizes and CORS are lib/http-api.ts's; the user's memberships come from
// the warehouse's own curated `memberships`, and lib/authz.ts readableProjects decides which
// projects' changes a user may count (403 with no membership in the workspace).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readableProjects, type Membership, type Role } from '../lib/authz.js';
import { type AnyRoute, createApiHandler } from '../lib/http-api.js';
import type { TokenVerifier } from '../lib/jwt.js';
import type { Logger } from '../lib/logger.js';
import type { Warehouse } from './warehouse/duckdb.js';
import { lit } from './warehouse/tables.js';

export interface AnalyticsApiDeps {
  warehouse: Warehouse;
  verify: TokenVerifier;
  now?: () => number;
  logger?: Logger;
}

type Grant = 'all' | string[];
const MAX_MINUTES = 240;

const projectFilter = (grant: Grant) => (grant === 'all' ? '' : ` AND project_id IN (${grant.map(lit).join(', ')})`);

export function analyticsRoutes(deps: AnalyticsApiDeps): AnyRoute[] {
  const now = deps.now ?? Date.now;
  const authorize = (userId: string, memberships: readonly Membership[], { workspaceId }: { workspaceId: string }): Grant | undefined => {
    const projects = readableProjects(userId, memberships, workspaceId);
    return projects === 'all' || projects.length > 0 ? projects : undefined;
  };
  return [
    {
      method: 'GET',
      path: /^\/v1\/workspaces\/([^/]+)\/analytics\/changes-per-minute$/,
      ids: ['workspace'],
      parse([workspaceId = ''], query) {
        const minutes = Number(query.get('minutes') ?? 60);
        if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_MINUTES) return { badRequest: `minutes must be an integer from 1 to ${MAX_MINUTES}` };
        return { workspaceId, minutes };
      },
      authorize,
      async handle({ params: { workspaceId, minutes }, grant }: { params: { workspaceId: string; minutes: number }; grant: Grant }) {
        const since = new Date(now() - minutes * 60_000).toISOString();
        const rows = await deps.warehouse.query(
          `SELECT coalesce(project_id, '') AS project_id, epoch_ms(date_trunc('minute', time)) AS minute, count(*)::INTEGER AS changes FROM raw_events
           WHERE workspace_id = ${lit(workspaceId)} AND time >= CAST(${lit(since)} AS TIMESTAMPTZ)${projectFilter(grant)} GROUP BY 1, 2 ORDER BY 2, 1`,
        );
        return { status: 200, body: { minutes, series: rows.map((r) => ({ projectId: String(r.project_id) || null, minute: new Date(Number(r.minute)).toISOString(), changes: Number(r.changes) })) } };
      },
    },
    {
      method: 'GET',
      path: /^\/v1\/workspaces\/([^/]+)\/analytics\/freshness$/,
      ids: ['workspace'],
      parse: ([workspaceId = '']) => ({ workspaceId }),
      authorize,
      async handle({ params: { workspaceId }, grant }: { params: { workspaceId: string }; grant: Grant }) {
        const [row] = await deps.warehouse.query(`SELECT epoch_ms(max(time)) AS newest, epoch_ms(max(loaded_at)) AS loaded FROM raw_events WHERE workspace_id = ${lit(workspaceId)}${projectFilter(grant)}`);
        const newest = row?.newest === null || row?.newest === undefined ? null : Number(row.newest);
        return {
          status: 200,
          body: {
            newestCommit: newest === null ? null : new Date(newest).toISOString(),
            lastLoaded: row?.loaded === null || row?.loaded === undefined ? null : new Date(Number(row.loaded)).toISOString(),
            freshnessSeconds: newest === null ? null : (now() - newest) / 1000,
          },
        };
      },
    },
  ];
}

/** Memberships of a user from the curated `memberships` view. */
async function warehouseMemberships(warehouse: Warehouse, userId: string): Promise<Membership[]> {
  const rows = await warehouse.query(`SELECT workspace_id, project_id, role FROM memberships WHERE user_id = ${lit(userId)}`);
  return rows.map((r) => ({ workspaceId: String(r.workspace_id), projectId: r.project_id === null ? null : String(r.project_id), role: String(r.role) as Role }));
}

export function createAnalyticsHandler(deps: AnalyticsApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return createApiHandler({ name: 'analytics', verify: deps.verify, memberships: (userId) => warehouseMemberships(deps.warehouse, userId), logger: deps.logger }, analyticsRoutes(deps));
}
