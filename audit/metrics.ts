// The audit service's Prometheus metrics, declared once. The consumer library adds its own
// (iterator age, leases, checkpoints) to the same registry.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { AuditDlqReason, AuditMetrics } from './shard-writer.js';

export const AUDIT_METRICS = {
  eventsIn: 'taskflow_audit_events_in_total',
  recorded: 'taskflow_audit_records_total',
  withoutActor: 'taskflow_audit_records_without_actor_total',
  duplicatesSkipped: 'taskflow_audit_duplicates_skipped_total',
  deadLettered: 'taskflow_audit_dlq_total',
  segmentsWritten: 'taskflow_audit_segments_written_total',
  segmentConflicts: 'taskflow_audit_segment_conflicts_total',
  segmentWriteSeconds: 'taskflow_audit_segment_write_seconds',
  commitToRecord: 'taskflow_audit_commit_to_record_seconds',
} as const;

export function prometheusAuditMetrics(registry: Registry, now: () => number = Date.now): AuditMetrics {
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers: [registry] });
  const eventsIn = counter(AUDIT_METRICS.eventsIn, 'User records read from the change stream');
  const recorded = counter(AUDIT_METRICS.recorded, 'Changes written to the audit trail');
  const withoutActor = counter(AUDIT_METRICS.withoutActor, 'Entity changes recorded without an actor (the application emitted no taskflow.actor message)');
  const duplicates = counter(AUDIT_METRICS.duplicatesSkipped, 'Records already in the trail (redelivered, or sent again by capture), skipped');
  const dlq = counter(AUDIT_METRICS.deadLettered, 'Records sent to the dead-letter store', ['reason']);
  const segments = counter(AUDIT_METRICS.segmentsWritten, 'Segments written');
  const conflicts = counter(AUDIT_METRICS.segmentConflicts, 'Segment writes that found their index taken by another worker (a lease changed hands)');
  const writeSeconds = new Histogram({ name: AUDIT_METRICS.segmentWriteSeconds, help: 'Time to write one segment', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] });
  const commitToRecord = new Histogram({ name: AUDIT_METRICS.commitToRecord, help: 'Commit time to the segment holding the change, per change', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300], registers: [registry] });
  return {
    eventsIn: (n) => eventsIn.inc(n),
    recorded(records) {
      recorded.inc(records.length);
      const at = now();
      for (const r of records) {
        if (r.actor === null && (r.op === 'c' || r.op === 'u' || r.op === 'd')) withoutActor.inc();
        commitToRecord.observe(Math.max(0, at - Date.parse(r.time)) / 1000);
      }
    },
    duplicatesSkipped: (n) => duplicates.inc(n),
    deadLettered: (reason: AuditDlqReason) => dlq.inc({ reason }),
    segmentWritten(seconds) {
      segments.inc();
      writeSeconds.observe(seconds);
    },
    segmentConflict: () => conflicts.inc(),
  };
}
