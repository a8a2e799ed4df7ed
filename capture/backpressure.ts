// Backpressure on the replication stream. pg-logical-replication has no pause: when Kinesis falls
// behind, capture stops reading the replication socket, so TCP flow control makes the walsender
// wait and the WAL stays on the server instead of piling up in this process's memory. The socket
// is pg's Connection `stream`, which the library keeps private as `_connection`; this adapter is
// the one place that reaches for it, so a library upgrade that moves it breaks here, visibly.
import type { LogicalReplicationService } from 'pg-logical-replication';

export interface Backpressure {
  pause(): void;
  resume(): void;
}

export function replicationSocketBackpressure(repl: LogicalReplicationService): Backpressure {
  const socket = () => (repl as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } })._connection?.stream;
  return {
    pause: () => socket()?.pause(),
    resume: () => socket()?.resume(),
  };
}
