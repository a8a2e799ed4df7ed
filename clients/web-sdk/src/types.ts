// The change types the application receives. The event envelope itself is defined by the JSON
// Schemas in schemas/ (see change-event.ts); these are the SDK's wire-level shapes from
// schemas/CONTRACTS.md ("MQTT messages to browsers", "Replay API").
import type { ChangeEvent } from './change-event.js';

export type { ChangeEvent };

/** A change carried in full: the envelope as committed. */
export interface FullChange {
  readonly seq: number;
  readonly mode: 'full';
  readonly event: ChangeEvent;
}

/**
 * A thin change: identity and what changed; the application fetches the rest if it needs it. Live
 * messages in thin mode carry these, and so do replay answers from a router in thin mode.
 */
export interface ThinChange {
  readonly seq: number;
  readonly mode: 'thin';
  readonly id: string;
  readonly type: string;
  readonly time: string;
  readonly key: Readonly<Record<string, unknown>> | null;
  /** Updates: the columns the update changed, in column order; a column not listed did not change. */
  readonly changed?: readonly string[];
}

export type Change = FullChange | ThinChange;

export type Status = 'connecting' | 'live' | 'recovering' | 'offline';
