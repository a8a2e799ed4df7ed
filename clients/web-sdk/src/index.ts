// @taskflow/realtime: ordered, exactly-once project changes from TaskFlow over MQTT/WebSocket.
export { createClient } from './client.js';
export { TOPIC_ROOT, projectTopic, projectTopicOf, userTopicOf, type ProjectRef } from './topics.js';
export type { ClientOptions, NotificationHandlers, NotificationSubscription, ProjectHandlers, RealtimeClient, ResyncInfo, Unsubscribe } from './client.js';
export type { Notification } from './notification-feed.js';
export type { IotCoreAuth } from './connection.js';
export { RealtimeError, type RealtimeErrorCode } from './errors.js';
export type { DebugSink } from './log.js';
export type { BackoffOptions } from './backoff.js';
export type { SubscriptionConfig } from './subscription-machine.js';
export type { TokenProvider } from './token.js';
export type { Change, FullChange, ThinChange, Status } from './types.js';
export { isTableChange } from './change-event.js';
export type {
  ChangeData,
  ChangeEvent,
  ChangeSource,
  CommentRow,
  Envelope,
  MembershipRow,
  ProjectRow,
  RowsByTable,
  TableChangeEvent,
  TaskRow,
} from './change-event.js';
