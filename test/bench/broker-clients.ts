// A child process of bench:broker holding a share of the MQTT-over-WebSocket connections to the
// broker node under test: one mqtt.js client per user (the token as the password, the client id
// bound to the user), subscribed to its projects' topics at QoS 0 in one SUBSCRIBE. It counts the
// messages its clients receive and reports over IPC, with the workspace of each client that
// connected and subscribed (a connect the node refused or closed is counted, not retried). Exits when its parent does.
import mqtt, { type MqttClient } from 'mqtt';
import { projectTopicOf } from '../../lib/authz.js';
import { signDevToken } from '../../lib/jwt.js';

export interface BrokerClientUser {
  userId: string;
  workspaceId: string;
}

export type BrokerClientCommand =
  | { type: 'connect'; wsUrl: string; secret: string; users: BrokerClientUser[]; projects: string[]; connectSpacingMs: number }
  | { type: 'count' }
  | { type: 'close' };

export type BrokerClientReport =
  | { type: 'connected'; connected: number; refused: number; subscribeFailures: number; errors: string[]; workspaces: string[] }
  | { type: 'count'; received: number; open: number }
  | { type: 'closed' };

const clients: MqttClient[] = [];
const errors: string[] = [];
let received = 0;

const report = (r: BrokerClientReport) => process.send!(r);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function connectAll(c: Extract<BrokerClientCommand, { type: 'connect' }>): Promise<void> {
  const secret = new TextEncoder().encode(c.secret);
  let connected = 0;
  let refused = 0;
  let subscribeFailures = 0;
  const pending: Promise<void>[] = [];
  const workspaces: string[] = [];
  for (const u of c.users) {
    const password = await signDevToken(secret, u.userId, { ttlSeconds: 6 * 3600 });
    const one = (async () => {
      try {
        const client = await mqtt.connectAsync(c.wsUrl, { clientId: `${u.userId}.bench`, username: 'bench', password, reconnectPeriod: 0, keepalive: 60, connectTimeout: 60_000 });
        client.on('error', (err) => errors.length < 20 && errors.push(err.message));
        client.on('message', () => {
          received += 1;
        });
        clients.push(client);
        const granted = await client.subscribeAsync(
          c.projects.map((p) => projectTopicOf(u.workspaceId, p)),
          { qos: 0 },
        );
        subscribeFailures += granted.filter((g) => g.qos === 128).length;
        connected += 1;
        workspaces.push(u.workspaceId);
      } catch (err) {
        refused += 1;
        if (errors.length < 20) errors.push((err as Error).message);
      }
    })();
    pending.push(one);
    await sleep(c.connectSpacingMs);
  }
  await Promise.all(pending);
  report({ type: 'connected', connected, refused, subscribeFailures, errors: errors.splice(0), workspaces });
}

process.on('message', (command: BrokerClientCommand) => {
  if (command.type === 'connect') void connectAll(command);
  else if (command.type === 'count') report({ type: 'count', received, open: clients.filter((c) => c.connected).length });
  else if (command.type === 'close') {
    void Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined))).then(() => report({ type: 'closed' }));
  }
});
process.on('disconnect', () => process.exit(0));
