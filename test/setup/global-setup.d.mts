/** Starts one local stack as a child process and points TASKFLOW_STACK_FILE at it (see global-setup.mjs). */
export default function globalSetup(): Promise<void>;
