// AWS IoT Core custom authorizer: TaskFlow JWT (MQTT password, or the `token` IoT passes from the
// WebSocket query/header) → IoT policy documents allowing exactly the grants of lib/authz.ts.
// Nobody but a publisher identity (the router's token subject) is ever allowed iot:Publish: a
// browser's documents grant connect, subscribe and receive only, as the local broker's hooks
// (infra/local/broker-auth.ts) refuse every publish but a service identity's.
// `iotPolicyDocuments` is pure; `createIotAuthorizer` wires it to token verification and the
// membership projection and is what the Lambda exports.
import { TOPIC_ROOT } from '@taskflow/realtime';
import { canConnect, clientIdPrefix, isBindableUserId, type Membership, subscriptionGrants } from '../lib/authz.js';
import type { TokenVerifier } from '../lib/jwt.js';

export interface IotAuthorizerEvent {
  token?: string;
  protocols?: string[];
  /** IoT passes `mqtt` for MQTT connects (password base64) and `http` for a WebSocket upgrade. */
  protocolData?: { mqtt?: { username?: string; password?: string; clientId?: string }; http?: { headers?: Record<string, string>; queryString?: string } };
}

export interface IotAuthorizerResponse {
  isAuthenticated: boolean;
  principalId: string;
  disconnectAfterInSeconds: number;
  refreshAfterInSeconds: number;
  policyDocuments: string[];
}

export interface IotAccount {
  region: string;
  accountId: string;
}

/** IoT Core limits: each policy document ≤ 2048 characters, ≤ 10 documents. */
const MAX_DOCUMENT_CHARS = 2048;
const MAX_DOCUMENTS = 10;

/**
 * Policy documents granting connect with the user's own client ids (`client/<userId>.?*`: IAM's
 * `?` is one character, `*` any number — the ids lib/authz.ts `canConnect` accepts) and
 * subscribe/receive on its grants only. The caller makes sure the user id is bindable.
 */
export function iotPolicyDocuments(userId: string, memberships: readonly Membership[], account: IotAccount): string[] {
  const arn = (kind: string, name: string) => `arn:aws:iot:${account.region}:${account.accountId}:${kind}/${name}`;
  // In IoT policies `+` is literal and `*` is the wildcard: a `+` grant becomes `*` for both the
  // topic filter (any single project, or the `+` filter itself) and the topics received.
  const policyName = (grant: string) => grant.replace(/\+/g, '*');
  const grants = subscriptionGrants(userId, memberships);
  const docs: string[] = [JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: arn('client', `${clientIdPrefix(userId)}?*`) }] })];
  let batch: string[] = [];
  const flush = () => {
    if (batch.length === 0) return;
    docs.push(document(batch));
    batch = [];
  };
  const document = (gs: string[]) =>
    JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'iot:Subscribe', Resource: gs.map((g) => arn('topicfilter', policyName(g))) },
        { Effect: 'Allow', Action: 'iot:Receive', Resource: gs.map((g) => arn('topic', policyName(g))) },
      ],
    });
  for (const g of grants) {
    if (document([...batch, g]).length > MAX_DOCUMENT_CHARS) flush();
    batch.push(g);
  }
  flush();
  // Beyond IoT's limit the user keeps the grants that fit (workspace-wide ones sort first);
  // clients may hold only 50 subscriptions per connection anyway.
  return docs.slice(0, MAX_DOCUMENTS);
}

/** The lifecycle topics the router reads subscriptions and disconnects from (lib/subscriptions.ts). */
const LIFECYCLE_TOPICS = '$aws/events/*';

/**
 * A publisher's documents (the router): connect with its own client ids, publish to the
 * pipeline's topics (project and user topics — never `$aws/…`), and read the lifecycle events.
 */
export function publisherPolicyDocuments(userId: string, account: IotAccount): string[] {
  const arn = (kind: string, name: string) => `arn:aws:iot:${account.region}:${account.accountId}:${kind}/${name}`;
  return [
    JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'iot:Connect', Resource: arn('client', `${clientIdPrefix(userId)}?*`) },
        { Effect: 'Allow', Action: 'iot:Publish', Resource: arn('topic', `${TOPIC_ROOT}/*`) },
        { Effect: 'Allow', Action: 'iot:Subscribe', Resource: arn('topicfilter', LIFECYCLE_TOPICS) },
        { Effect: 'Allow', Action: 'iot:Receive', Resource: arn('topic', LIFECYCLE_TOPICS) },
      ],
    }),
  ];
}

export interface IotAuthorizerDeps {
  verify: TokenVerifier;
  memberships: (userId: string) => Promise<Membership[]>;
  account: IotAccount;
  /** Token subjects that get the publisher's documents (the router's `ROUTER_SERVICE_USER`). */
  publisherUserIds?: readonly string[];
  /** Re-run the authorizer this often (IoT's minimum is 300 s) so revoked memberships drop. */
  refreshAfterSeconds?: number;
  now?: () => number;
}

const DENY: IotAuthorizerResponse = { isAuthenticated: false, principalId: 'denied', disconnectAfterInSeconds: 0, refreshAfterInSeconds: 300, policyDocuments: [] };

export function createIotAuthorizer(deps: IotAuthorizerDeps): (event: IotAuthorizerEvent) => Promise<IotAuthorizerResponse> {
  return async (event) => {
    const password = event.protocolData?.mqtt?.password;
    const token = event.token ?? (password ? Buffer.from(password, 'base64').toString('utf8') : undefined);
    if (!token) return DENY;
    const clientId = event.protocolData?.mqtt?.clientId;
    let verified;
    try {
      verified = await deps.verify(token);
    } catch {
      return DENY;
    }
    // A user id the policy cannot bind is refused outright; over MQTT IoT passes the client id, so
    // a foreign one is refused here already (the policy refuses it in any case).
    if (!isBindableUserId(verified.userId) || (clientId !== undefined && !canConnect(verified.userId, clientId))) return DENY;
    const nowSeconds = Math.floor((deps.now?.() ?? Date.now()) / 1000);
    const publisher = deps.publisherUserIds?.includes(verified.userId) === true;
    const policyDocuments = publisher ? publisherPolicyDocuments(verified.userId, deps.account) : iotPolicyDocuments(verified.userId, await deps.memberships(verified.userId), deps.account);
    return {
      isAuthenticated: true,
      principalId: verified.userId.replace(/[^a-zA-Z0-9]/g, '').slice(0, 128) || 'user',
      // The connection ends when the token does (IoT allows 300 s … 24 h).
      disconnectAfterInSeconds: Math.min(86_400, Math.max(300, verified.expiresAt - nowSeconds)),
      refreshAfterInSeconds: Math.max(300, deps.refreshAfterSeconds ?? 300),
      policyDocuments,
    };
  };
}
