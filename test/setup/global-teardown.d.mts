/** Stops the stack global-setup started, if any. */
export default function globalTeardown(): Promise<void>;
