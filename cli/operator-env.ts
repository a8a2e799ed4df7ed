// Where an operator command (dlq, redrive, inbox, query …) finds the engines: the environment, or,
// when it names none, the running local stack (.taskflow/stack.json), so a developer need not
// export the stack's addresses by hand.
import { readStackInfo, type StackInfo, stackEnv } from '../lib/stack-info.js';

type Env = Record<string, string | undefined>;

export interface OperatorEnvOptions {
  /** Settings beyond DynamoDB's that, when set, mean "not the local stack" (e.g. AUDIT_STORE_DIR). */
  configuredBy?: readonly string[];
  /** Local-stack values of the command's own settings; the environment still wins over them. */
  localDefaults?: (info: StackInfo) => Record<string, string>;
}

export function operatorEnvironment(options: OperatorEnvOptions = {}): Env {
  const configured = ['DYNAMODB_ENDPOINT', 'AWS_EXECUTION_ENV', ...(options.configuredBy ?? [])].some((name) => process.env[name]);
  if (configured) return process.env;
  try {
    const info = readStackInfo();
    return { ...stackEnv(info), ...options.localDefaults?.(info), ...process.env };
  } catch {
    return process.env;
  }
}
