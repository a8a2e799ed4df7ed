// Debug logging, silent by default and switchable at run time (client.setDebug).
export type DebugSink = (message: string, fields?: Record<string, unknown>) => void;

const consoleSink: DebugSink = (message, fields) => console.debug(`[taskflow-realtime] ${message}`, fields ?? '');

export class DebugLog {
  private sink: DebugSink | undefined;

  constructor(debug: boolean | DebugSink | undefined) {
    this.set(debug);
  }

  set(debug: boolean | DebugSink | undefined): void {
    this.sink = debug === true ? consoleSink : typeof debug === 'function' ? debug : undefined;
  }

  get enabled(): boolean {
    return this.sink !== undefined;
  }

  log(message: string, fields?: Record<string, unknown>): void {
    this.sink?.(message, fields);
  }
}
