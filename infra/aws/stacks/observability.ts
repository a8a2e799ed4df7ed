// CloudWatch: one alarm per entry of the alarm catalog (infra/alarms.ts), each naming its
// runbook, all notifying one SNS topic for the pager; and the pipeline dashboard.
import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { type Alarm, alarms } from '../../alarms.js';
import type { Settings } from '../settings.js';
import { importedKey } from './compliance.js';

export const RUNBOOK_BASE = 'https://github.com/taskflow/pipeline/blob/main/runbooks/';

function metricOf(a: Alarm): cloudwatch.Metric {
  const c = a.cloudwatch;
  return new cloudwatch.Metric({ namespace: c.namespace, metricName: c.metricName, ...(c.dimensions ? { dimensionsMap: c.dimensions } : {}), statistic: c.statistic, period: Duration.seconds(c.periodSeconds) });
}

export class ObservabilityStack extends Stack {
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, settings: Settings, dataKey: kms.IKey, props?: StackProps) {
    super(scope, id, props);
    const pager = new sns.Topic(this, 'Pager', { displayName: 'TaskFlow pipeline pages', masterKey: importedKey(this, dataKey), enforceSSL: true });
    const catalog = alarms(settings);
    for (const a of catalog) {
      const alarm = new cloudwatch.Alarm(this, a.id, {
        alarmName: a.id,
        alarmDescription: `${a.summary}. Runbook: ${RUNBOOK_BASE}${a.runbook}`,
        metric: metricOf(a),
        threshold: a.cloudwatch.threshold,
        evaluationPeriods: a.cloudwatch.evaluationPeriods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        // Missing data means the service stopped reporting: that pages through its own alarms.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(new actions.SnsAction(pager));
      this.alarms.push(alarm);
    }
    const dashboard = new cloudwatch.Dashboard(this, 'Pipeline', { dashboardName: `taskflow-${settings.env}-pipeline` });
    dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }));
    dashboard.addWidgets(...catalog.map((a) => new cloudwatch.GraphWidget({ title: a.summary, left: [metricOf(a)], width: 8, leftAnnotations: [{ value: a.cloudwatch.threshold, label: 'alarm' }] })));
  }
}
