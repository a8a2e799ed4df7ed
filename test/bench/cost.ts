// `npm run bench:cost`: the cost model at the seed's scale, kept as results/cost.json so the bill
// is reviewed with the measurements it is built from (nothing is timed: it is arithmetic).
import { compare } from '../../infra/aws/cost/model.js';
import { loadPrices, loadScale } from '../../infra/aws/cost/load.js';
import { writeBenchResult } from './report.js';

const prices = loadPrices();
const scale = loadScale('seed');
const c = compare(scale, prices);
const perService = Object.fromEntries(Object.entries(c.default.services).map(([name, item]) => [`${name}_usd`, item.usd]));
const path = writeBenchResult(
  'cost',
  {
    prices_as_of: prices.as_of,
    prices_note: prices.recheck,
    scale: scale.name,
    measured_inputs: scale.measured,
    levers: c.default.levers,
    services: c.default.services,
    iot_vs_selfhosted_usd: c.iot_vs_selfhosted_usd,
    each_lever: c.levers.map((l) => ({ name: l.name, monthly_usd_total: l.monthly_usd_total, delta_usd: l.delta_usd })),
    cumulative: c.cumulative,
    sensitivity: c.sensitivity,
  },
  { monthly_usd_total: c.default.monthly_usd_total, ...perService, iot_core_usd: c.iot_vs_selfhosted_usd.iot_core, self_hosted_mqtt_usd: c.iot_vs_selfhosted_usd.self_hosted },
);
console.log(`wrote ${path}: $${c.default.monthly_usd_total}/month`);
