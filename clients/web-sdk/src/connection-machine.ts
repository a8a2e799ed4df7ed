// One MQTT connection's lifecycle as a pure state machine (time and jitter passed in). mqtt.js'
// own reconnect loop (a fixed reconnectPeriod) is switched off; this machine decides when to
// open a socket: at once on start, then after a full-jitter backoff following every loss, with
// the backoff reset by a successful CONNACK so that a routine close (IoT Core ends every
// WebSocket after 24 h) is followed by a prompt reconnect. See SPEC.md.
import { defaultBackoff, fullJitterDelay, type BackoffOptions } from './backoff.js';

export type ConnectionPhase = 'idle' | 'connecting' | 'connected' | 'waiting' | 'stopped';

export interface ConnectionState {
  readonly phase: ConnectionPhase;
  /** Id of the current (or last) connect attempt; events from older attempts are ignored. */
  readonly attempt: number;
  /** Losses since the last successful CONNACK: the backoff exponent. */
  readonly failures: number;
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
  retryAt: null,
  refreshToken: false,
};

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
      return { state: { ...state, phase: 'connected', failures: 0 }, effects: [{ type: 'phase', phase: 'connected' }] };
    case 'lost': {
      if (event.attempt !== state.attempt || (state.phase !== 'connecting' && state.phase !== 'connected')) return unchanged;
      const next: ConnectionState = {
        ...state,
        phase: 'waiting',
        failures: state.failures + 1,
        retryAt: event.now + fullJitterDelay(state.failures, event.random, backoff),
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
