// What the MQTT authorizer decides and how long it takes: the broker's hooks
// (infra/local/broker-auth.ts: locally and on the self-hosted tier's nodes) report it here. With
// IoT Core the same decisions are made by its custom authorizer Lambda, whose errors and duration
// CloudWatch measures itself (AWS/Lambda), so the alarm catalog reads those there (infra/alarms.ts).
import { Counter, Histogram, type Registry } from 'prom-client';

export type AuthorizerStep = 'connect' | 'subscribe' | 'publish';
/** deny: refused on the token or the grants; error: could not decide (projection unreadable). */
export const AUTHORIZER_OUTCOMES = ['allow', 'deny', 'error'] as const;
export type AuthorizerOutcome = (typeof AUTHORIZER_OUTCOMES)[number];

export const AUTHORIZER_METRICS = {
  decisions: 'taskflow_authorizer_decisions_total',
  seconds: 'taskflow_authorizer_seconds',
} as const;

export interface AuthorizerMetrics {
  decided(step: AuthorizerStep, outcome: AuthorizerOutcome, seconds: number): void;
}

export const noopAuthorizerMetrics: AuthorizerMetrics = { decided: () => undefined };

export function prometheusAuthorizerMetrics(registry: Registry): AuthorizerMetrics {
  const decisions = new Counter({ name: AUTHORIZER_METRICS.decisions, help: 'Authorizer decisions by step and outcome', labelNames: ['step', 'outcome'], registers: [registry] });
  const seconds = new Histogram({ name: AUTHORIZER_METRICS.seconds, help: 'Time to decide, per step', labelNames: ['step'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] });
  return {
    decided(step, outcome, s) {
      decisions.inc({ step, outcome });
      seconds.observe({ step }, s);
    },
  };
}
