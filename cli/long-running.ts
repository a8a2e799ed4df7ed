// How a long-running `taskflow <service>` ends: on SIGINT or SIGTERM it logs why, stops the
// service gracefully (checkpoints, leases released, buffers drained) and exits 0. Later signals
// during that stop are ignored, so a second Ctrl-C cannot cut the drain short.
import type { Logger } from '../lib/logger.js';

/** Registers the stop; the caller then runs the service. */
export function stopOnSignal(logger: Logger, message: string, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, message);
    void stop().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** For a service that runs on its own once started: waits for the signal (the stop exits the process). */
export function runUntilSignalled(logger: Logger, message: string, stop: () => Promise<void>): Promise<never> {
  stopOnSignal(logger, message, stop);
  return new Promise<never>(() => {});
}
