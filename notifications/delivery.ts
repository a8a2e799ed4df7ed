// Live delivery: each notification goes to its recipient's topic in its workspace
// (`taskflow/v1/ws/{ws}/users/{u}`, which lib/authz.ts grants to that user alone), through the
// router's publisher (lib/publishers.ts: the MQTT pool locally, IoT Core in production) — but
// only while the recipient may read the notification's project, per the service's own
// membership projection (README: a notification whose task the user can no longer see).
import { canReadProject, type Membership, userTopicOf } from '../lib/authz.js';
import type { Publisher } from '../lib/publishers.js';
import type { Delivery } from './pipeline.js';
import type { Notification } from './rules.js';

/** What a notification message on a user's topic holds (clients/web-sdk decodes it). */
export interface NotificationMessage {
  type: 'taskflow.notification';
  notification: Notification;
}

export function notificationMessage(n: Notification): Buffer {
  const message: NotificationMessage = { type: 'taskflow.notification', notification: n };
  return Buffer.from(JSON.stringify(message));
}

export interface MembershipLookup {
  memberships(userId: string): Promise<Membership[]>;
}

export class PublishingDelivery implements Delivery {
  constructor(
    private readonly publisher: Publisher,
    private readonly memberships: MembershipLookup,
  ) {}

  async deliver(notifications: readonly Notification[]): Promise<number> {
    const byUser = new Map<string, Notification[]>();
    for (const n of notifications) byUser.set(n.userId, [...(byUser.get(n.userId) ?? []), n]);
    const sent = await Promise.all(
      [...byUser].map(async ([userId, ns]) => {
        const ms = await this.memberships.memberships(userId);
        let count = 0;
        // One user's notifications leave in event order (one topic, one connection of the pool).
        for (const n of ns) {
          if (!canReadProject(userId, ms, n.workspaceId, n.projectId)) continue;
          await this.publisher.publish(userTopicOf(n.workspaceId, userId), notificationMessage(n));
          count += 1;
        }
        return count;
      }),
    );
    return sent.reduce((a, b) => a + b, 0);
  }
}
