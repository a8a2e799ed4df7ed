// The local stand-in of an IoT Core custom authorizer in front of the broker: the connect forms
// IoT Core accepts, the authorizer Lambda's handler called with the event IoT would build, and
// its answer's policy documents enforced on every connect, subscribe, publish and delivery
// (infra/local/iot-policy.ts). So a client configured for IoT Core — the SDK's `iot` option —
// runs against the same policy function production runs, before any AWS account exists.
//
// Forms (IoT Core "custom authentication"):
// - MQTT over WebSocket: `wss://…/mqtt?x-amz-customauthorizer-name=<name>&<tokenKeyName>=<token>`;
//   IoT authenticates the upgrade and passes the token and the HTTP request (no MQTT fields).
// - MQTT: username `<anything>?x-amz-customauthorizer-name=<name>`, password = the token; IoT
//   passes username, client id and the password base64-encoded.
// A refusal is CONNACK 5 (IoT answers a WebSocket upgrade it refuses with 401; the SDK treats
// both as an authentication failure).
import type { Client } from 'aedes';
import type { IotAccount, IotAuthorizerEvent, IotAuthorizerResponse } from '../../router/iot-authorizer.js';
import type { BrokerHooks } from './broker.js';
import { iotArn, policyAllows } from './iot-policy.js';

export interface CustomAuthorizerStandInOptions {
  authorizerName: string;
  /** The query parameter the token rides in (the authorizer's token key name). */
  tokenKeyName?: string;
  /** The Lambda's handler (router/iot-authorizer-lambda.ts). */
  authorize: (event: IotAuthorizerEvent) => Promise<IotAuthorizerResponse>;
  account: IotAccount;
}

const NOT_AUTHORIZED = 5;
const NAME_PARAM = 'x-amz-customauthorizer-name';

function refused(message: string): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode: NOT_AUTHORIZED });
}

/** The event IoT Core builds for this connect, or why it would not call the authorizer. */
export function authorizerEvent(o: Pick<CustomAuthorizerStandInOptions, 'authorizerName' | 'tokenKeyName'>, connect: { url?: string; headers?: Record<string, unknown>; clientId: string; username?: string; password?: Buffer }): IotAuthorizerEvent | string {
  const query = new URL(connect.url ?? '/', 'http://localhost').searchParams;
  if (query.has(NAME_PARAM)) {
    if (query.get(NAME_PARAM) !== o.authorizerName) return `no authorizer named ${String(query.get(NAME_PARAM))}`;
    const token = query.get(o.tokenKeyName ?? 'token');
    if (!token) return 'the WebSocket URL carries no token';
    const headers = Object.fromEntries(Object.entries(connect.headers ?? {}).map(([k, v]) => [k, String(v)]));
    return { token, protocols: ['tls', 'http', 'mqtt'], protocolData: { http: { headers, queryString: `?${query.toString()}` } } };
  }
  const usernameQuery = connect.username?.includes('?') ? new URLSearchParams(connect.username.slice(connect.username.indexOf('?') + 1)) : undefined;
  if (usernameQuery?.has(NAME_PARAM)) {
    if (usernameQuery.get(NAME_PARAM) !== o.authorizerName) return `no authorizer named ${String(usernameQuery.get(NAME_PARAM))}`;
    return { protocols: ['tls', 'mqtt'], protocolData: { mqtt: { username: connect.username, clientId: connect.clientId, ...(connect.password ? { password: connect.password.toString('base64') } : {}) } } };
  }
  return 'no custom authorizer named in the URL or the username';
}

export function customAuthorizerHooks(o: CustomAuthorizerStandInOptions): BrokerHooks {
  const documents = new WeakMap<Client, string[]>();
  const allows = (client: Client | null, action: string, kind: 'client' | 'topic' | 'topicfilter', name: string): boolean => {
    if (client === null) return true; // the broker's own publishes (lifecycle events, the data plane)
    const docs = documents.get(client);
    return docs !== undefined && policyAllows(docs, action, iotArn(o.account, kind, name));
  };
  return {
    authenticate(client, username, password, done) {
      const event = authorizerEvent(o, { url: client.req?.url, headers: client.req?.headers, clientId: client.id, ...(username ? { username } : {}), ...(password ? { password } : {}) });
      if (typeof event === 'string') {
        done(refused(event), false);
        return;
      }
      o.authorize(event).then(
        (res) => {
          if (!res.isAuthenticated) return done(refused('the authorizer denied the connection'), false);
          documents.set(client, res.policyDocuments);
          if (!allows(client, 'iot:Connect', 'client', client.id)) return done(refused(`the policy does not allow client id ${client.id}`), false);
          done(null, true);
        },
        (err: unknown) => done(Object.assign(err instanceof Error ? err : new Error(String(err)), { returnCode: NOT_AUTHORIZED }), false),
      );
    },
    authorizeSubscribe(client, subscription, done) {
      // null → SUBACK failure (0x80) for this filter, as IoT Core answers a filter the policy refuses.
      done(null, client !== null && allows(client, 'iot:Subscribe', 'topicfilter', subscription.topic) ? subscription : null);
    },
    authorizePublish(client, packet, done) {
      done(allows(client, 'iot:Publish', 'topic', packet.topic) ? null : refused(`the policy does not allow publishing to ${packet.topic}`));
    },
    authorizeForward(client, packet) {
      return allows(client, 'iot:Receive', 'topic', packet.topic) ? packet : null;
    },
  };
}
