// One MQTT connection's lifecycle as a pure state machine (time and jitter passed in). mqtt.js'
// own reconnect loop (a fixed reconnectPeriod) is switched off; this machine decides when to
// open a socket: at once on start, then after a full-jitter backoff following every loss. The
// backoff starts over after a connection that stayed up for `stableAfterMs`, so that a routine
// close (IoT Core ends every WebSocket after 24 h) is followed by a prompt reconnect, while a
// broker that accepts and then drops us at once still meets a growing backoff. See SPEC.md.
import { defaultBackoff, fullJitterDelay, type BackoffOptions } from './backoff.js';

export type ConnectionPhase = 'idle' | 'connecting' | 'connected' | 'waiting' | 'stopped';

export interface ConnectionState {
  readonly phase: ConnectionPhase;
  /** Id of the current (or last) connect attempt; events from older attempts are ignored. */
  readonly attempt: number;
  /** Losses since the last stable connection: the backoff exponent. */
  readonly failures: number;
  /** When the current connection's CONNACK arrived. */
  readonly connectedAt: number | null;
  readonly retryAt: number | null;
  /** The broker rejected the credentials: fetch a fresh token before the next attempt. */
  readonly refreshToken: boolean;
}

export type ConnectionEvent =
  | { type: 'start'; now: number }
  /** CONNACK accepted. */
  | { type: 'opened'; attempt: number; now: number }
  /** The attempt failed or the open connection closed; `auth`: credentials rejected. */
  | { type: 'lost'; attempt: number; reason: 'auth' | 'network'; now: number; random: number }
  | { type: 'tick'; now: number }
  /** The network is back (browser `online` event): do not sit out the backoff. */
  | { type: 'online'; now: number }
  | { type: 'stop' };

export type ConnectionEffect =
  | { type: 'open'; attempt: number; refreshToken: boolean }
  | { type: 'close' }
  | { type: 'phase'; phase: ConnectionPhase };

export const initialConnectionState: ConnectionState = {
  phase: 'idle',
  attempt: 0,
  failures: 0,
  connectedAt: null,
  retryAt: null,
  refreshToken: false,
};

/** A connection up this long counts as stable: the next loss starts the backoff over. */
export const STABLE_CONNECTION_MS = 10_000;

export function connectionTransition(
  state: ConnectionState,
  event: ConnectionEvent,
  backoff: BackoffOptions = defaultBackoff,
): { state: ConnectionState; effects: ConnectionEffect[] } {
  const open = (s: ConnectionState): { state: ConnectionState; effects: ConnectionEffect[] } => {
    const next: ConnectionState = { ...s, phase: 'connecting', attempt: s.attempt + 1, retryAt: null, refreshToken: false };
    return {
      state: next,
      effects: [{ type: 'open', attempt: next.attempt, refreshToken: s.refreshToken }, { type: 'phase', phase: 'connecting' }],
    };
  };
  const unchanged = { state, effects: [] };
  if (state.phase === 'stopped') return unchanged;

  switch (event.type) {
    case 'start':
      return state.phase === 'idle' ? open(state) : unchanged;
    case 'opened':
      if (event.attempt !== state.attempt || state.phase !== 'connecting') return unchanged;
      return { state: { ...state, phase: 'connected', connectedAt: event.now }, effects: [{ type: 'phase', phase: 'connected' }] };
    case 'lost': {
      if (event.attempt !== state.attempt || (state.phase !== 'connecting' && state.phase !== 'connected')) return unchanged;
      const stable = state.phase === 'connected' && state.connectedAt !== null && event.now - state.connectedAt >= STABLE_CONNECTION_MS;
      const failures = stable ? 0 : state.failures;
      const next: ConnectionState = {
        ...state,
        phase: 'waiting',
        failures: failures + 1,
        connectedAt: null,
        retryAt: event.now + fullJitterDelay(failures, event.random, backoff),
        refreshToken: state.refreshToken || event.reason === 'auth',
      };
      return { state: next, effects: [{ type: 'phase', phase: 'waiting' }] };
    }
    case 'tick':
      return state.phase === 'waiting' && state.retryAt !== null && event.now >= state.retryAt ? open(state) : unchanged;
    case 'online':
      return state.phase === 'waiting' ? open(state) : unchanged;
    case 'stop':
      return { state: { ...state, phase: 'stopped', retryAt: null }, effects: [{ type: 'close' }, { type: 'phase', phase: 'stopped' }] };
  }
}
