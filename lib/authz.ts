// Who may subscribe to what (docs/ARCHITECTURE.md, "One authorization function"): ONE pure function, `subscriptionGrants`,
// turns a user's memberships into the MQTT topic filters it may subscribe to. The local broker's
// hooks, the IoT Core custom authorizer (as a policy document) and the replay API all decide
// from these grants, so they can never disagree.
//   workspace-wide membership (project null) → every project of the workspace
//   project membership                        → that project
//   any membership in a workspace            → the user's own notification topic there
// Every role may read; nobody but the router publishes.
//
// Connections are bound to their identity the same way: an MQTT client id is
// `<userId>.<suffix>` (`canConnect`), so no user can take over another's session (a second
// connection with an existing client id disconnects the first) and the router can name a user's
// connections from their client ids alone (`clientIdUser`). `.` separates because no bindable
// user id contains one: user ids are UUIDs, service ids like `service:router`.

export type Role = 'owner' | 'admin' | 'member' | 'viewer';

export interface Membership {
  workspaceId: string;
  /** null: workspace-wide. */
  projectId: string | null;
  role: Role;
}

import { projectTopicOf, userTopicOf } from '@taskflow/realtime';

export { projectTopicOf, userTopicOf };

/** The router's token subject unless ROUTER_SERVICE_USER says otherwise: the one publisher. */
export const DEFAULT_ROUTER_SERVICE_USER = 'service:router';

/** The topic filters `userId` may subscribe to; `+` grants any single project of a workspace. */
export function subscriptionGrants(userId: string, memberships: readonly Membership[]): string[] {
  const grants = new Set<string>();
  const wideWorkspaces = new Set(memberships.filter((m) => m.projectId === null).map((m) => m.workspaceId));
  for (const m of memberships) {
    if (!isTopicLevel(m.workspaceId)) continue;
    if (isTopicLevel(userId)) grants.add(userTopicOf(m.workspaceId, userId));
    if (m.projectId === null) grants.add(projectTopicOf(m.workspaceId, '+'));
    else if (!wideWorkspaces.has(m.workspaceId) && isTopicLevel(m.projectId)) grants.add(projectTopicOf(m.workspaceId, m.projectId));
  }
  return [...grants].sort();
}

/** Whether subscribing to `filter` is allowed: every topic it can match lies within one grant. */
export function canSubscribe(userId: string, memberships: readonly Membership[], filter: string): boolean {
  return subscriptionGrants(userId, memberships).some((grant) => filterCovers(grant, filter));
}

/** The replay API's rule: the project's topic must be subscribable. */
export function canReadProject(userId: string, memberships: readonly Membership[], workspaceId: string, projectId: string): boolean {
  return isTopicLevel(workspaceId) && isTopicLevel(projectId) && canSubscribe(userId, memberships, projectTopicOf(workspaceId, projectId));
}

/**
 * What a query over a workspace may return (the search API): 'all' projects, the listed ones, or
 * none. Derived from the grants, so it can never disagree with canReadProject.
 */
export function readableProjects(userId: string, memberships: readonly Membership[], workspaceId: string): 'all' | string[] {
  if (!isTopicLevel(workspaceId)) return [];
  const grants = subscriptionGrants(userId, memberships);
  if (grants.includes(projectTopicOf(workspaceId, '+'))) return 'all';
  const prefix = projectTopicOf(workspaceId, '');
  return grants.filter((g) => g.startsWith(prefix)).map((g) => g.slice(prefix.length));
}

/** MQTT topic-filter containment: is every topic matched by `filter` also matched by `grant`? */
export function filterCovers(grant: string, filter: string): boolean {
  const g = grant.split('/');
  const f = filter.split('/');
  for (let i = 0; i < g.length; i += 1) {
    const gl = g[i];
    const fl = f[i];
    if (gl === '#') return true;
    if (fl === undefined) return false;
    if (fl === '#') return false;
    if (gl === '+') continue;
    if (fl === '+' || fl !== gl) return false;
  }
  return f.length === g.length;
}

/** An id usable as one topic level: no wildcards or separators smuggled in. */
function isTopicLevel(s: string): boolean {
  return s.length > 0 && !s.includes("/") && !s.includes("+") && !s.includes("#") && !s.includes(String.fromCharCode(0));
}

/** Separates the user id from the connection's own part in an MQTT client id. */
export const CLIENT_ID_SEPARATOR = '.';
/** IoT Core's limit on a client id. */
export const MAX_CLIENT_ID_BYTES = 128;

/**
 * Whether a user id may own connections: short, and free of the separator, MQTT topic wildcards
 * and separators, and IoT policy wildcards and variables (`*`, `?`, `$`), so that the IoT policy
 * resource `client/<userId>.?*` matches exactly the ids `canConnect` accepts.
 */
export function isBindableUserId(userId: string): boolean {
  return /^[A-Za-z0-9_:-]{1,64}$/.test(userId);
}

/** The client id prefix every connection of `userId` starts with. */
export function clientIdPrefix(userId: string): string {
  return `${userId}${CLIENT_ID_SEPARATOR}`;
}

/** Whether `userId` may connect with `clientId`: `<userId>.<at least one character>`, ≤ 128 bytes. */
export function canConnect(userId: string, clientId: string): boolean {
  const prefix = clientIdPrefix(userId);
  return isBindableUserId(userId) && clientId.length > prefix.length && clientId.startsWith(prefix) && new TextEncoder().encode(clientId).length <= MAX_CLIENT_ID_BYTES;
}

/** The user a bound client id belongs to (undefined: not a bound id). */
export function clientIdUser(clientId: string): string | undefined {
  const at = clientId.indexOf(CLIENT_ID_SEPARATOR);
  if (at <= 0) return undefined;
  const userId = clientId.slice(0, at);
  return canConnect(userId, clientId) ? userId : undefined;
}
