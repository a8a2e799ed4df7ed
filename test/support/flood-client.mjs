// The abusive client of test/integration/flood-pipeline.test.ts, in its own process as it would be
// on its own machine: its client-side work (16 request loops, connect loops) does not share an
// event loop with the broker or the subscriber being measured. Settings from the environment;
// prints one JSON line with what it got (statuses, changes replayed, connects) when FLOOD_MS have passed.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import mqtt from 'mqtt';

const { FLOOD_URL, FLOOD_TOKEN, FLOOD_BROKER, FLOOD_CLIENT_ID_PREFIX, FLOOD_MS, FLOOD_REQUEST_LOOPS, FLOOD_CONNECT_LOOPS } = process.env;
const end = performance.now() + Number(FLOOD_MS);
const statuses = {};
let changes = 0;
let connected = 0;
let connacks3 = 0;
const otherErrors = [];

async function requestLoop() {
  while (performance.now() < end) {
    const res = await globalThis.fetch(FLOOD_URL, { headers: { authorization: `Bearer ${FLOOD_TOKEN}` } });
    if (res.status === 200) changes += (await res.json()).changes.length;
    else await res.arrayBuffer();
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    if (res.status === 429 && !(Number(res.headers.get('retry-after')) >= 1)) otherErrors.push('429 without Retry-After');
  }
}

async function connectLoop() {
  while (performance.now() < end) {
    try {
      const c = await mqtt.connectAsync(FLOOD_BROKER, { clientId: `${FLOOD_CLIENT_ID_PREFIX}${randomBytes(8).toString('hex')}`, username: 'u', password: FLOOD_TOKEN, reconnectPeriod: 0, connectTimeout: 5000 });
      connected++;
      await c.endAsync(true);
    } catch (err) {
      if (err?.code === 3) connacks3++;
      else otherErrors.push(String(err));
    }
  }
}

await Promise.all([...Array.from({ length: Number(FLOOD_REQUEST_LOOPS) }, requestLoop), ...Array.from({ length: Number(FLOOD_CONNECT_LOOPS) }, connectLoop)]);
process.stdout.write(`${JSON.stringify({ statuses, changes, connected, connacks3, otherErrors: otherErrors.slice(0, 5) })}\n`);
