// `npm run bench:iot-publish`: the router's two ways to publish to IoT Core, measured locally —
// MQTT with mTLS (the router's pool, lib/publishers.ts MqttPublisherPool, against a private
// Mosquitto started from its binary with its own config and a CA and certificates made with
// openssl for this run, on an ephemeral port) and the data-plane HTTPS Publish API
// (IotDataPublisher on @aws-sdk/client-iot-data-plane, against a local HTTPS stand-in in its own
// process). For each: messages/s and the publisher's CPU µs per message (this process), and the
// server's CPU. mqtt.js, not aws-iot-device-sdk-v2: that SDK runs on aws-crt, a native addon with
// an install script (it builds from source when no prebuilt binary fits), which the project's
// supply-chain rules keep out; mqtt.js speaks MQTT 3.1.1/5 over TLS with client certificates,
// which is what IoT Core's device endpoint takes.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane';
import { IotDataPublisher, MqttPublisherPool, type Publisher } from '../../lib/publishers.js';
import { loadPrices } from '../../infra/aws/cost/load.js';
import { benchParam, cpuSeconds, median, writeBenchResult } from './report.js';

const MESSAGES = benchParam('BENCH_MESSAGES', 20_000);
const RUNS = benchParam('BENCH_RUNS', 3);
const CONNECTIONS = benchParam('BENCH_MQTT_CONNECTIONS', 8); // ROUTER_MQTT_CONNECTIONS' default
const IN_FLIGHT = benchParam('BENCH_IN_FLIGHT', 50); // the SDK's default maxSockets for HTTPS; as many outstanding PUBLISHes for MQTT
const PAYLOAD_BYTES = benchParam('BENCH_PAYLOAD_BYTES', 700); // the cost model's thin message (message_bytes 697)
const PROJECTS = 500;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A CA, a server certificate for 127.0.0.1 and the router's client certificate, made now. */
function makeCerts(dir: string): { ca: Buffer; serverCert: string; serverKey: string; caFile: string; cert: Buffer; key: Buffer } {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=taskflow-bench-ca');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const [name, subject, ext] of [['server', '/CN=localhost', ['-extfile', 'server.ext']], ['router', '/CN=service:router', []]] as const) {
    ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', ...ext);
  }
  // Mosquitto started as root drops to its own user before reading these: throwaway files, readable.
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  return { ca: readFileSync(join(dir, 'ca.crt')), caFile: join(dir, 'ca.crt'), serverCert: join(dir, 'server.crt'), serverKey: join(dir, 'server.key'), cert: readFileSync(join(dir, 'router.crt')), key: readFileSync(join(dir, 'router.key')) };
}

/** Resolves once a TLS handshake with the port succeeds (the server is up). */
async function tlsReady(port: number, ca: Buffer, child: ChildProcess, client: { cert?: Buffer; key?: Buffer } = {}): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...client }, () => {
        s.end();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answered TLS on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function startMosquitto(dir: string, port: number, c: ReturnType<typeof makeCerts>): ChildProcess {
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      `cafile ${c.caFile}`,
      `certfile ${c.serverCert}`,
      `keyfile ${c.serverKey}`,
      'require_certificate true',
      'use_identity_as_username true',
      'allow_anonymous false',
      'persistence false',
      `max_inflight_messages ${IN_FLIGHT}`,
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  return spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The data-plane Publish route over HTTPS: POST /topics/{topic}?qos=N, answered 200 `{}` once the body is in. */
function startHttpsStandIn(port: number, c: ReturnType<typeof makeCerts>): ChildProcess {
  const code = `
    import { createServer } from 'node:https';
    import { readFileSync } from 'node:fs';
    const server = createServer({ cert: readFileSync(process.env.CERT), key: readFileSync(process.env.KEY), keepAliveTimeout: 60000 }, (req, res) => {
      if (req.method !== 'POST' || !req.url.startsWith('/topics/')) { res.writeHead(404).end(); return; }
      let n = 0;
      req.on('data', (chunk) => { n += chunk.length; });
      req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }).end('{}'); });
    });
    server.listen(Number(process.env.PORT), '127.0.0.1');
  `;
  return spawn(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, CERT: c.serverCert, KEY: c.serverKey, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] });
}

const payload = Buffer.from(JSON.stringify({ v: 1, mode: 'thin', pad: 'x'.repeat(Math.max(0, PAYLOAD_BYTES - 30)) }).slice(0, PAYLOAD_BYTES));
const topicOf = (i: number) => `taskflow/v1/ws/bench/projects/p${i % PROJECTS}`;

interface Run {
  messagesPerS: number;
  publisherCpuUsPerMessage: number;
  serverCpuUsPerMessage: number;
}

/** Publishes MESSAGES with IN_FLIGHT outstanding; this process's CPU and the server's, per message. */
async function measure(publisher: Publisher, serverPid: number): Promise<Run> {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const server0 = cpuSeconds(serverPid);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < MESSAGES) {
        const i = next++;
        await publisher.publish(topicOf(i), payload);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    messagesPerS: MESSAGES / seconds,
    publisherCpuUsPerMessage: (cpu.user + cpu.system) / MESSAGES,
    serverCpuUsPerMessage: ((cpuSeconds(serverPid) - server0) * 1e6) / MESSAGES,
  };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

function summary(runs: Run[]) {
  return {
    messages_per_s: Math.round(median(runs.map((r) => r.messagesPerS))),
    publisher_cpu_us_per_message: Number(median(runs.map((r) => r.publisherCpuUsPerMessage)).toFixed(1)),
    server_cpu_us_per_message: Number(median(runs.map((r) => r.serverCpuUsPerMessage)).toFixed(1)),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-iot-publish-'));
  const children: ChildProcess[] = [];
  try {
    const certs = makeCerts(dir);

    console.log(`bench:iot-publish — MQTT with mTLS to a private Mosquitto (${CONNECTIONS} connections) …`);
    const mqttPort = await freePort();
    const mosquitto = startMosquitto(dir, mqttPort, certs);
    children.push(mosquitto);
    await tlsReady(mqttPort, certs.ca, mosquitto, { cert: certs.cert, key: certs.key });
    // No publish-rate cap here: IoT Core's 100 publishes/s per connection is applied below, in the sizing.
    const pool = await MqttPublisherPool.connect({ url: `mqtts://127.0.0.1:${mqttPort}`, size: CONNECTIONS, clientIdPrefix: 'service:router.bench', publishesPerSecond: 1e9, tls: { ca: certs.ca, cert: certs.cert, key: certs.key } });
    const mqttRuns: Run[] = [];
    for (let r = 0; r < RUNS; r += 1) mqttRuns.push(await measure(pool, mosquitto.pid!));
    await pool.close();
    const mqtt = summary(mqttRuns);
    console.log(`  ${mqtt.messages_per_s} messages/s, ${mqtt.publisher_cpu_us_per_message} µs publisher CPU/message, ${mqtt.server_cpu_us_per_message} µs Mosquitto CPU/message`);

    console.log(`bench:iot-publish — data-plane HTTPS Publish (${IN_FLIGHT} requests in flight, keep-alive) …`);
    const httpsPort = await freePort();
    const standIn = startHttpsStandIn(httpsPort, certs);
    children.push(standIn);
    await tlsReady(httpsPort, certs.ca, standIn);
    const client = new IoTDataPlaneClient({
      region: 'us-east-1',
      endpoint: `https://127.0.0.1:${httpsPort}`,
      credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
      requestHandler: { httpsAgent: new Agent({ ca: certs.ca, keepAlive: true, maxSockets: IN_FLIGHT }) },
    });
    const data = new IotDataPublisher(client);
    const httpsRuns: Run[] = [];
    for (let r = 0; r < RUNS; r += 1) httpsRuns.push(await measure(data, standIn.pid!));
    await data.close();
    const https = summary(httpsRuns);
    console.log(`  ${https.messages_per_s} messages/s, ${https.publisher_cpu_us_per_message} µs publisher CPU/message, ${https.server_cpu_us_per_message} µs stand-in CPU/message`);

    // Cost per million publishes: IoT Core meters both paths the same (one message per 5 KB);
    // the router's CPU is the difference, priced at the EKS node's vCPU-hour.
    const prices = loadPrices();
    const vcpuSecondUsd = prices.ec2.node_hour / prices.ec2.node_vcpus / 3600;
    const messageUsd = prices.iot_core.message_tiers[prices.iot_core.message_tiers.length - 1]!.per_million;
    const perMillion = (cpuUs: number) => Number((messageUsd + cpuUs * vcpuSecondUsd).toFixed(4));
    const path = writeBenchResult(
      'iot-publish',
      {
        messages: MESSAGES,
        runs: RUNS,
        mqtt_connections: CONNECTIONS,
        in_flight: IN_FLIGHT,
        payload_bytes: payload.length,
        qos: 1,
        mqtt: 'mqtt.js 5 over TLS 1.3 with a client certificate (EC P-256, openssl-made CA) to Mosquitto 2.0 from /usr/sbin/mosquitto, require_certificate; QoS 1 (PUBACK awaited); no per-connection cap',
        https: 'IotDataPublisher (@aws-sdk/client-iot-data-plane PublishCommand, SigV4-signed) over keep-alive HTTPS to a Node stand-in in its own process answering 200',
        cpu_note: 'publisher CPU = this process (the router side); server CPU = the Mosquitto or stand-in process, from /proc',
        cost_note: `USD per million publishes: IoT Core's message price at the top tier (${messageUsd}/M, the same for both paths) plus the publisher's CPU at ${prices.ec2.node_type} ${prices.ec2.node_hour}/h over ${prices.ec2.node_vcpus} vCPUs`,
        iot_core_limit_note: 'IoT Core caps MQTT at 100 publishes/s per connection; HTTPS Publish is limited by the account-level data-plane request quota',
        mqtt_runs: mqttRuns,
        https_runs: httpsRuns,
      },
      {
        mqtt_messages_per_s: mqtt.messages_per_s,
        mqtt_publisher_cpu_us_per_message: mqtt.publisher_cpu_us_per_message,
        mqtt_server_cpu_us_per_message: mqtt.server_cpu_us_per_message,
        https_messages_per_s: https.messages_per_s,
        https_publisher_cpu_us_per_message: https.publisher_cpu_us_per_message,
        https_server_cpu_us_per_message: https.server_cpu_us_per_message,
        mqtt_usd_per_million: perMillion(mqtt.publisher_cpu_us_per_message),
        https_usd_per_million: perMillion(https.publisher_cpu_us_per_message),
      },
    );
    console.log(`wrote ${path}`);
  } finally {
    for (const c of children) await stop(c);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
