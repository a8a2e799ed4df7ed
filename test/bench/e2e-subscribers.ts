// A child process of bench:e2e (and bench:recovery, bench:clients) holding a share of the SDK
// clients (one WebSocket each, with `subscriptionsPerClient` project subscriptions: 1 unless told),
// so the clients' receive times are not delayed by the event loop that runs capture, router and
// broker. It records what each subscription hands the application and reports on request over
// IPC. Exits when its parent does.
import { createClient, type Change, type RealtimeClient, type Status } from '@taskflow/realtime';
import type { Delivered } from './e2e-analysis.js';

export interface Assignment {
  workspaceId: string;
  projectId: string;
}

export type SubscriberCommand =
  | {
      type: 'start';
      url: string;
      replayUrl: string;
      token: string;
      /** One per subscription; consecutive groups of subscriptionsPerClient share a client (and its connection). */
      assignments: Assignment[];
      subscriptionsPerClient?: number;
      connectSpacingMs: number;
      /** Ids of the clients' MQTT connections (`<user>.<prefix>-<pid>-<n>`). */
      clientIdPrefix?: string;
    }
  | { type: 'progress' }
  | { type: 'collect' };

export type SubscriberReport =
  | { type: 'live' }
  | { type: 'progress'; counts: number[]; statuses: Status[]; errors: string[] }
  | { type: 'result'; delivered: Delivered[]; errors: string[] };

const clients: RealtimeClient[] = [];
const delivered: Delivered[] = [];
const statuses: Status[] = [];
const errors: string[] = [];
/** Subscriptions whose status is not 'live' (the check after every status change stays O(1)). */
const notLive = new Set<number>();

function send(report: SubscriberReport): void {
  process.send?.(report);
}

/** Clients connect one after another, as browsers do, rather than all in the same millisecond. */
async function start(command: Extract<SubscriberCommand, { type: 'start' }>): Promise<void> {
  const perClient = command.subscriptionsPerClient ?? 1;
  let client: RealtimeClient | undefined;
  for (const [i, { workspaceId, projectId }] of command.assignments.entries()) {
    if (i % perClient === 0) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, command.connectSpacingMs));
      client = createClient({
        url: command.url,
        token: command.token,
        replayUrl: command.replayUrl,
        clientIdSuffix: `${command.clientIdPrefix ?? 'bench-e2e'}-${process.pid}-${i / perClient}`,
        onError: (err) => errors.push(err.message),
        // Why connections drop: the SDK's own account of connection errors (other debug lines are dropped).
        debug: (message, fields) => {
          if (/error|failed/.test(message) && errors.length < 50) errors.push(`${message} ${JSON.stringify(fields ?? {})}`);
        },
      });
      clients.push(client);
    }
    const d: Delivered = { workspaceId, projectId, ids: [], commitMs: [], receivedMs: [], resyncs: 0, offlines: 0 };
    delivered.push(d);
    statuses.push('connecting');
    notLive.add(i);
    client!.subscribeProject(workspaceId, projectId, {
      fromSeq: 1, // the whole history, so it can be compared with the truth
      onChange: (change: Change) => {
        const receivedMs = Date.now();
        if (change.mode !== 'full') throw new Error('bench:e2e expects full payloads');
        d.ids.push(change.event.id);
        d.commitMs.push(Date.parse(change.event.time));
        d.receivedMs.push(receivedMs);
      },
      onResync: () => (d.resyncs += 1),
      onStatus: (status) => {
        if (status === 'offline' && statuses[i] !== 'offline') d.offlines += 1;
        if (status !== 'live') notLive.add(i);
        else notLive.delete(i);
        statuses[i] = status;
        if (statuses.length === command.assignments.length && notLive.size === 0) send({ type: 'live' });
      },
    });
  }
}

process.on('message', (command: SubscriberCommand) => {
  if (command.type === 'start') void start(command);
  else if (command.type === 'progress') send({ type: 'progress', counts: delivered.map((d) => d.ids.length), statuses, errors });
  else {
    send({ type: 'result', delivered, errors });
    for (const c of clients) c.close();
  }
});
process.on('disconnect', () => process.exit(0));
