// `taskflow infra prometheus-rules` and `taskflow infra grafana` print the local alert rules and
// the production dashboard, both built from the alarm catalog (infra/alarms.ts).
import type { Command } from '../main.js';

const usage = `usage:
  taskflow infra prometheus-rules            the Prometheus alerting rules (infra/prometheus/alerts.yml)
  taskflow infra grafana                     the Grafana dashboard JSON (infra/prometheus/grafana-dashboard.json)`;

export const command: Command = {
  summary: 'alerting: prometheus-rules | grafana',
  async run(argv) {
    const [sub] = argv;
    if (sub === 'prometheus-rules' || sub === 'grafana') {
      const { alarms, prometheusRules } = await import('../../infra/alarms.js');
      const { grafanaDashboard } = await import('../../infra/dashboard.js');
      const list = alarms({ streamName: 'taskflow-changes' });
      process.stdout.write(sub === 'grafana' ? `${JSON.stringify(grafanaDashboard(list), null, 2)}\n` : prometheusRules(list));
      return 0;
    }
    console.error(usage);
    return 2;
  },
};
