// The gdpr processor's and CLI's settings, declared once: loadConfig, `taskflow gdpr --help` and
// the table in gdpr/README.md come from GDPR_SETTINGS (lib/config.ts).
import { AWS_SETTINGS, type AwsConfig, loadAwsConfig } from '../lib/aws.js';
import { type Env, intSetting, readSettings, stringSetting, tableEnvVar, uniqueSettings, urlSetting } from '../lib/config.js';
import { DEV_MODE_SETTINGS } from '../lib/dev-mode.js';
import { LOG_SETTINGS } from '../lib/logger.js';
import { METRICS_SETTINGS } from '../lib/metrics.js';
import { SUBJECT_KEY_SETTINGS, type SubjectKeyConfig, loadSubjectKeyConfig } from '../lib/subject-keys.js';
import { GDPR_REQUESTS_TABLE, GDPR_REQUESTS_TABLE_KEY } from './request-store.js';

export const GDPR_SETTINGS = {
  databaseUrl: urlSetting({ name: 'DATABASE_URL', meaning: 'The source database: where a request is recorded (gdpr_erasure_requests, so it travels the stream) and the subject is looked up.' }),
  requestsTable: stringSetting({ name: tableEnvVar(GDPR_REQUESTS_TABLE_KEY), default: GDPR_REQUESTS_TABLE, meaning: 'Erasure requests and their state machine (gdpr/request-store.ts).' }),
  pollMs: intSetting({ name: 'GDPR_POLL_INTERVAL_MS', default: 2000, min: 50, max: 600_000, meaning: 'How often the processor looks for open requests (a request that failed is retried on the next look).' }),
  ...METRICS_SETTINGS,
};

export const GDPR_SETTING_LIST = uniqueSettings(GDPR_SETTINGS, SUBJECT_KEY_SETTINGS, AWS_SETTINGS, DEV_MODE_SETTINGS, LOG_SETTINGS);

export interface GdprConfig {
  aws: AwsConfig;
  databaseUrl: string;
  requestsTable: string;
  pollMs: number;
  metricsPort: number;
  metricsHost: string;
  subjectKeys: SubjectKeyConfig;
}

export function loadConfig(env: Env): GdprConfig {
  const s = readSettings(env, GDPR_SETTINGS);
  return { aws: loadAwsConfig(env), databaseUrl: s.databaseUrl, requestsTable: s.requestsTable, pollMs: s.pollMs, metricsPort: s.metricsPort, metricsHost: s.metricsHost, subjectKeys: loadSubjectKeyConfig(env) };
}
