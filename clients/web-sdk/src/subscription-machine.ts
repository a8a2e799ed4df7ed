// One project subscription as a pure state machine: `transition(state, event)` returns the next
// state and the effects the adapter must perform. No I/O, no clock, no randomness of its own:
// time (`now`) and jitter (`random`) arrive inside events. The rules are written down in
// clients/web-sdk/SPEC.md; the property tests in subscription-machine.test.ts check that for any
// schedule the application sees the committed history exactly once in seq order, or a resync.
import { fullJitterDelay, defaultBackoff, type BackoffOptions } from './backoff.js';
import type { Change, Status } from './types.js';

export interface SubscriptionConfig {
  /** How long an out-of-order hole may stay open before the missing range is fetched. */
  reorderWindowMs: number;
  /** Buffered changes beyond which the hole is fetched at once (and the highest are dropped). */
  maxBuffered: number;
  /** `limit` of one replay request. */
  replayPageSize: number;
  /** Backoff between failed replay requests. */
  retry: BackoffOptions;
  /**
   * One more replay request this long after each SUBACK (0: none). The router publishes only to
   * topics it knows to have subscribers, and learns of a new subscription from broker events
   * that arrive after the SUBACK (IoT Core lifecycle events: seconds later, unordered); a change
   * committed in between is neither published nor in the first catch-up.
   */
  confirmAfterSubscribeMs: number;
}

export const defaultSubscriptionConfig: SubscriptionConfig = {
  reorderWindowMs: 250,
  maxBuffered: 1000,
  replayPageSize: 500,
  retry: defaultBackoff,
  confirmAfterSubscribeMs: 3000,
};

interface ReplayInFlight {
  readonly id: number;
  readonly after: number;
  /** subscribeEpoch when the request was issued: a catch-up only counts for that subscription. */
  readonly epoch: number;
  /** Asked only to learn whether access is still granted, after the broker refused the topic. */
  readonly probe: boolean;
}

export interface SubscriptionState {
  /** Seq of the last change handed to the application; null until known (no fromSeq, nothing received). */
  readonly position: number | null;
  /** Changes with seq > position + 1, waiting for the hole below them to fill. */
  readonly buffer: ReadonlyMap<number, Change>;
  /** When the current hole was first seen (null: no hole). */
  readonly gapSince: number | null;
  /** Highest latestSeq a replay answer reported: everything up to it is committed. */
  readonly replayLatest: number;
  /** True between the topic's SUBACK and the connection's loss. */
  readonly subscribed: boolean;
  /** What the connection is doing while not subscribed. */
  readonly connectionStatus: 'connecting' | 'offline';
  /** Increments on every SUBACK: each (re)subscription must be followed by a catch-up fetch. */
  readonly subscribeEpoch: number;
  /** Highest subscribeEpoch for which a catch-up fetch (issued after its SUBACK) completed. */
  readonly caughtUpEpoch: number;
  /** When the confirming replay request after the last SUBACK is due (null: none pending). */
  readonly confirmAt: number | null;
  readonly replay: ReplayInFlight | null;
  readonly nextRequestId: number;
  /** Failed replay requests in a row, for backoff. */
  readonly retryAttempt: number;
  /** Backoff deadline after a failed replay request (null: none pending). */
  readonly retryAt: number | null;
  /** The last replay failure was a rejected token: the next request must refresh it. */
  readonly refreshToken: boolean;
  /**
   * The broker refused the topic (SUBACK failure) and the replay API has not yet said why. A
   * broker refuses for other reasons than access (IoT Core throttles subscribe requests), so
   * only a 403 from the replay API ends the subscription; otherwise it subscribes again.
   */
  readonly accessInDoubt: boolean;
  /** SUBACK failures since the last success: the resubscribe backoff exponent. */
  readonly rejections: number;
  /** Backoff before the next resubscribe, drawn when the refusal came. */
  readonly resubscribeDelay: number;
  /** When to ask the adapter to subscribe again (null: not planned). */
  readonly resubscribeAt: number | null;
  /** Terminal: access denied (403). */
  readonly failed: boolean;
  /** Last status reported to the application. */
  readonly status: Status;
}

export type SubscriptionEvent =
  /** SUBACK for the project's topic on a live connection. */
  | { type: 'subscribed'; now: number }
  /** The broker refused the topic (SUBACK failure code): confirmed with the replay API. */
  | { type: 'rejected'; now: number; random: number }
  /** The connection is down (offline) or being (re)established (connecting). */
  | { type: 'connection'; status: 'connecting' | 'offline'; now: number }
  /** A decoded MQTT batch for this project. */
  | { type: 'message'; changes: readonly Change[]; now: number }
  | { type: 'replayOk'; requestId: number; changes: readonly Change[]; latestSeq: number; now: number }
  | { type: 'replayTooOld'; requestId: number; oldestSeq: number; latestSeq: number; now: number }
  | {
      type: 'replayFailed';
      requestId: number;
      reason: 'unauthorized' | 'forbidden' | 'transient';
      now: number;
      random: number;
    }
  /** Time passed (the adapter calls this at nextDeadline). */
  | { type: 'tick'; now: number };

export type SubscriptionEffect =
  | { type: 'deliver'; change: Change }
  /** The replay API no longer reaches back to the position: reload, then changes continue after latestSeq. */
  | { type: 'resync'; lastDelivered: number; oldestSeq: number; latestSeq: number }
  | { type: 'fetch'; requestId: number; after: number; limit: number; refreshToken: boolean }
  /** Send SUBSCRIBE for the topic again (after a refusal the replay API did not confirm). */
  | { type: 'resubscribe' }
  | { type: 'status'; status: Status }
  | { type: 'failed'; reason: 'forbidden' };

export interface Transition {
  readonly state: SubscriptionState;
  readonly effects: readonly SubscriptionEffect[];
}

/** `fromSeq`: the first seq the application wants (it already has everything before it). */
export function initialState(fromSeq?: number): SubscriptionState {
  return {
    position: fromSeq === undefined ? null : Math.max(0, fromSeq - 1),
    buffer: new Map(),
    gapSince: null,
    replayLatest: 0,
    subscribed: false,
    connectionStatus: 'connecting',
    subscribeEpoch: 0,
    caughtUpEpoch: 0,
    confirmAt: null,
    replay: null,
    nextRequestId: 1,
    retryAttempt: 0,
    retryAt: null,
    refreshToken: false,
    accessInDoubt: false,
    rejections: 0,
    resubscribeDelay: 0,
    resubscribeAt: null,
    failed: false,
    status: 'connecting',
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export function transition(
  state: SubscriptionState,
  event: SubscriptionEvent,
  config: SubscriptionConfig = defaultSubscriptionConfig,
): Transition {
  if (state.failed) return { state, effects: [] };
  const s: Mutable<SubscriptionState> = { ...state, buffer: new Map(state.buffer) };
  const buffer = s.buffer as Map<number, Change>;
  const effects: SubscriptionEffect[] = [];

  const accept = (change: Change): void => {
    if (s.position !== null && change.seq <= s.position) return; // duplicate: delivered already
    if (buffer.has(change.seq)) return; // duplicate: waiting already
    buffer.set(change.seq, change);
  };

  switch (event.type) {
    case 'subscribed':
      s.subscribed = true;
      s.subscribeEpoch += 1;
      s.accessInDoubt = false;
      s.rejections = 0;
      s.resubscribeAt = null;
      s.confirmAt = config.confirmAfterSubscribeMs > 0 ? event.now + config.confirmAfterSubscribeMs : null;
      // Nothing to catch up on without a position: the first message will define it.
      if (s.position === null) s.caughtUpEpoch = s.subscribeEpoch;
      break;
    case 'connection':
      s.subscribed = false;
      s.confirmAt = null;
      s.connectionStatus = event.status;
      // The next connection subscribes anyway (and a refusal then starts over).
      s.accessInDoubt = false;
      s.resubscribeAt = null;
      break;
    case 'message': {
      if (s.position === null && event.changes.length > 0) {
        s.position = Math.min(...event.changes.map((c) => c.seq)) - 1;
      }
      for (const change of event.changes) accept(change);
      break;
    }
    case 'replayOk': {
      const request = s.replay;
      if (request === null || request.id !== event.requestId) return { state, effects: [] };
      s.replay = null;
      if (request.probe) {
        accessConfirmed(s, event.now);
        break;
      }
      s.gapSince = null; // a hole left after this answer waits a fresh reorder window
      const progressed = event.changes.some((c) => c.seq === request.after + 1);
      if (!progressed && event.latestSeq > request.after) {
        // The API claims changes exist but sent none from the asked position: treat as a failure
        // (retrying with backoff) rather than spinning on it.
        scheduleRetry(s, event.now, 0.5, config);
        break;
      }
      s.retryAttempt = 0;
      for (const change of event.changes) accept(change);
      s.replayLatest = Math.max(s.replayLatest, event.latestSeq);
      drain(s, buffer, effects);
      if ((s.position ?? 0) >= event.latestSeq) s.caughtUpEpoch = Math.max(s.caughtUpEpoch, request.epoch);
      break;
    }
    case 'replayTooOld': {
      const request = s.replay;
      if (request === null || request.id !== event.requestId) return { state, effects: [] };
      s.replay = null;
      if (request.probe) {
        accessConfirmed(s, event.now);
        break;
      }
      s.retryAttempt = 0;
      s.gapSince = null;
      // A trimmed changelog proves everything below oldestSeq was committed, whatever a stale
      // latestSeq says; and the application is never told to continue before what it has.
      const latest = Math.max(event.latestSeq, event.oldestSeq - 1);
      s.replayLatest = Math.max(s.replayLatest, latest);
      const lastDelivered = s.position ?? request.after;
      // Live messages may have carried the position up to what the changelog still holds
      // while the request was in flight: then no resync is needed, the next fetch will do.
      // Without such progress the answer stands, whatever oldestSeq says (a changelog with a
      // hole answers 410 with an oldestSeq below the position: retrying would spin).
      if (lastDelivered > request.after && lastDelivered >= event.oldestSeq - 1) break;
      s.position = Math.max(lastDelivered, latest);
      effects.push({ type: 'resync', lastDelivered, oldestSeq: event.oldestSeq, latestSeq: s.position });
      for (const seq of [...buffer.keys()]) if (seq <= s.position) buffer.delete(seq);
      s.caughtUpEpoch = Math.max(s.caughtUpEpoch, request.epoch);
      break;
    }
    case 'replayFailed': {
      const request = s.replay;
      if (request === null || request.id !== event.requestId) return { state, effects: [] };
      s.replay = null;
      if (event.reason === 'forbidden') return fail(s, buffer, effects);
      if (event.reason === 'unauthorized') s.refreshToken = true;
      scheduleRetry(s, event.now, event.random, config);
      break;
    }
    case 'rejected':
      s.subscribed = false;
      s.confirmAt = null;
      s.accessInDoubt = true;
      s.resubscribeDelay = fullJitterDelay(s.rejections, event.random, config.retry);
      s.rejections += 1;
      break;
    case 'tick':
      if (s.resubscribeAt !== null && event.now >= s.resubscribeAt) {
        s.resubscribeAt = null;
        effects.push({ type: 'resubscribe' });
      }
      break;
  }

  drain(s, buffer, effects);
  trimBuffer(buffer, config.maxBuffered);
  if (buffer.size === 0) s.gapSince = null;
  else if (s.gapSince === null) s.gapSince = event.now;
  if (s.retryAt !== null && event.now >= s.retryAt) s.retryAt = null;

  const probe = probeNeeded(s);
  if (probe || fetchNeeded(s, event.now, config)) {
    const id = s.nextRequestId;
    s.nextRequestId += 1;
    s.replay = { id, after: s.position ?? 0, epoch: s.subscribeEpoch, probe };
    if (s.confirmAt !== null && event.now >= s.confirmAt) s.confirmAt = null;
    const limit = probe ? 1 : config.replayPageSize;
    effects.push({ type: 'fetch', requestId: id, after: s.position ?? 0, limit, refreshToken: s.refreshToken });
    s.refreshToken = false;
  }

  const status = statusOf(s);
  if (status !== state.status) effects.push({ type: 'status', status });
  s.status = status;
  return { state: s, effects };
}

/** When the adapter must call `tick` next (null: no timer needed). */
export function nextDeadline(state: SubscriptionState, config: SubscriptionConfig = defaultSubscriptionConfig): number | null {
  if (state.failed || state.replay !== null) return null;
  if (state.retryAt !== null) return state.retryAt;
  const due: number[] = [];
  if (state.subscribed && state.gapSince !== null) due.push(state.gapSince + config.reorderWindowMs);
  if (state.subscribed && state.position !== null && state.confirmAt !== null) due.push(state.confirmAt);
  if (state.resubscribeAt !== null) due.push(state.resubscribeAt);
  return due.length === 0 ? null : Math.min(...due);
}

/** The replay API answered a probe: access stands, so the refusal was something else; subscribe again after the backoff. */
function accessConfirmed(s: Mutable<SubscriptionState>, now: number): void {
  s.retryAttempt = 0;
  if (!s.accessInDoubt) return; // reconnected meanwhile: the new connection subscribes anyway
  s.accessInDoubt = false;
  s.resubscribeAt = now + s.resubscribeDelay;
}

function probeNeeded(s: SubscriptionState): boolean {
  return s.accessInDoubt && !s.subscribed && s.replay === null && s.retryAt === null;
}

function fail(s: Mutable<SubscriptionState>, buffer: Map<number, Change>, effects: SubscriptionEffect[]): Transition {
  s.failed = true;
  s.replay = null;
  buffer.clear();
  effects.push({ type: 'failed', reason: 'forbidden' });
  if (s.status !== 'offline') effects.push({ type: 'status', status: 'offline' });
  s.status = 'offline';
  return { state: s, effects };
}

function drain(s: Mutable<SubscriptionState>, buffer: Map<number, Change>, effects: SubscriptionEffect[]): void {
  if (s.position === null) return;
  for (let next = buffer.get(s.position + 1); next !== undefined; next = buffer.get(s.position + 1)) {
    buffer.delete(next.seq);
    s.position = next.seq;
    effects.push({ type: 'deliver', change: next });
  }
}

// Dropping buffered changes is always safe: they are committed, so the replay fetch that the
// hole below them triggers brings them back. It only bounds memory under a flood.
function trimBuffer(buffer: Map<number, Change>, maxBuffered: number): void {
  if (buffer.size <= maxBuffered) return;
  const highestFirst = [...buffer.keys()].sort((a, b) => b - a);
  for (const seq of highestFirst.slice(0, buffer.size - maxBuffered)) buffer.delete(seq);
}

function scheduleRetry(s: Mutable<SubscriptionState>, now: number, random: number, config: SubscriptionConfig): void {
  s.retryAt = now + fullJitterDelay(s.retryAttempt, random, config.retry);
  s.retryAttempt += 1;
}

function fetchNeeded(s: SubscriptionState, now: number, config: SubscriptionConfig): boolean {
  // Replay only while subscribed: a catch-up fetched before the SUBACK could miss what is
  // published between the fetch and the subscription.
  if (!s.subscribed || s.position === null || s.replay !== null || s.retryAt !== null) return false;
  if (s.caughtUpEpoch < s.subscribeEpoch) return true; // (re)subscribed: fetch what was missed
  if (s.position < s.replayLatest) return true; // the last page did not reach the end
  if (s.confirmAt !== null && now >= s.confirmAt) return true; // the router may have learned of us late
  if (s.gapSince === null) return false;
  return now - s.gapSince >= config.reorderWindowMs || s.buffer.size >= config.maxBuffered;
}

function statusOf(s: SubscriptionState): Status {
  if (s.failed) return 'offline';
  if (!s.subscribed) return s.connectionStatus;
  if (s.position === null) return 'live';
  const catchingUp = s.replay !== null || s.retryAt !== null || s.caughtUpEpoch < s.subscribeEpoch || s.position < s.replayLatest;
  return catchingUp ? 'recovering' : 'live';
}
