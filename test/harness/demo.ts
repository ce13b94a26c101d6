/**
 * `npm run demo`: the whole pipeline on one machine. Starts a local Kafka broker, the gateway, a
 * simulated fleet of reefers (a few of them failing), the anomaly detector, and a live view of the
 * readings and alerts arriving in Kafka; Ctrl-C (or --duration) stops everything and leaves nothing
 * running.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ReeferAlert } from '../../cloud-bridge/alerts.js';
import { createAnalyticsService } from '../../cloud-bridge/analytics-service.js';
import { createKafkaClient, createStreamsClient } from '../../cloud-bridge/kafka-client.js';
import { createFleet } from '../../device-sim/fleet.js';
import { fleetContainerIds } from '../../device-sim/reefer-model.js';
import { resolveConfig } from '../../gateway/config.js';
import { startGateway } from '../../gateway/main.js';
import { createLogger } from '../../gateway/ops/logger.js';
import { decodeSingleObject } from '../../schemas/avro.js';
import type { ReeferTelemetry } from '../../schemas/reefer-reading.js';
import { freePort } from './free-port.js';
import { KAFKA_VERSION, startKafkaBroker } from './kafka-broker.js';

const USAGE = `Usage: npm run demo -- [--devices N] [--rate R] [--duration S] [--mqtt-port P]

Starts a local Kafka ${KAFKA_VERSION} broker, the gateway, a simulated fleet with a few failing reefers and the
anomaly detector, and shows readings and alerts arriving in Kafka.
  --devices N     simulated reefers (default 20)
  --rate R        readings per second across the fleet (default 20)
  --duration S    stop after S seconds (default: run until Ctrl-C)
  --mqtt-port P   port of the gateway's MQTT broker, for your own devices (default 1883, or any free port if taken)
`;

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    process.stderr.write(`demo: --${name}: expected a positive number, got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return value;
}

async function portOrFree(preferred: number): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(freePort()));
    probe.listen(preferred, '127.0.0.1', () => probe.close(() => resolve(preferred)));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      devices: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      'mqtt-port': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const devices = Math.floor(positive('devices', values.devices, 20));
  const rate = positive('rate', values.rate, 20);
  const durationS = values.duration === undefined ? undefined : positive('duration', values.duration, 0);
  const mqttPort = await portOrFree(Math.floor(positive('mqtt-port', values['mqtt-port'], 1883)));
  const httpPort = await portOrFree(8080);

  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`Starting Kafka ${KAFKA_VERSION} (resolved from Maven Central on first run)...`);
  const broker = await startKafkaBroker();
  const dataDir = mkdtempSync(join(tmpdir(), 'reefer-demo-'));
  const config = resolveConfig({
    file: {
      gatewayId: 'demo-gateway',
      dataDir,
      // Simulated reefers and your own devices connect without credentials; see docs/security.md for a real site.
      mqtt: { host: '127.0.0.1', port: mqttPort, auth: { allowAnonymous: true } },
      http: { host: '127.0.0.1', port: httpPort },
      kafka: { brokers: [broker.bootstrap] },
      log: { level: 'warn' },
    },
  });
  const gateway = await startGateway(config, { logger: createLogger(config.log.level) });
  say(`Kafka at ${broker.bootstrap}; gateway MQTT at mqtt://127.0.0.1:${gateway.mqttPort()}; topic ${config.kafka.topic}`);
  say(`Dashboard at http://127.0.0.1:${gateway.httpPort()}/ (metrics at /metrics)`);

  const kafka = createKafkaClient({ brokers: [broker.bootstrap], clientId: 'demo-view' });
  const admin = kafka.admin();
  await admin.ensureTopics([{ topic: config.kafka.topic, partitions: config.kafka.partitions }]);
  await admin.close();
  // The reference anomaly detector, as `reefer-bridge analytics` runs it.
  const alerts: ReeferAlert[] = [];
  const analytics = createAnalyticsService(
    { telemetryTopic: config.kafka.topic, alertsTopic: 'reefer-alerts', stateTopic: 'reefer-analytics-state', groupId: 'demo-analytics' },
    {
      streams: createStreamsClient({ brokers: [broker.bootstrap], clientId: 'demo-analytics' }),
      admin: createKafkaClient({ brokers: [broker.bootstrap], clientId: 'demo-analytics' }).admin(),
      logger: createLogger('warn'),
      onAlert: (alert) => alerts.push(alert),
    },
  );
  await analytics.start();
  const latest = new Map<string, ReeferTelemetry>();
  let inKafka = 0;
  const view = kafka.consumer({ groupId: `demo-view-${Date.now()}`, topics: [config.kafka.topic], fromBeginning: true });
  await view.start((records) => {
    for (const r of records) {
      const decoded = r.value ? decodeSingleObject(r.value) : undefined;
      if (decoded?.ok) {
        inKafka += 1;
        const value = decoded.value as ReeferTelemetry;
        latest.set(value.container_id, value);
      }
    }
  });

  const containerIds = fleetContainerIds(devices);
  const fleet = createFleet({
    mqttUrl: `mqtt://127.0.0.1:${gateway.mqttPort()}`,
    devices,
    ratePerSecond: rate,
    seed: 1,
    qos: 1,
    form: 'canonical-json',
    // Simulated time runs at a reading per device every 5 minutes, so failures show within a minute.
    timeScale: (300 * rate) / devices,
    // One reefer in ten fails, each in one of the reference modes, for 40 readings from its 10th.
    scenario: {
      failures: (['poweroff', 'co2sensor', 'o2sensor', 'temperature', 'tempgrowth'] as const).flatMap((mode, i) => {
        const container = containerIds[i * 10];
        return container === undefined ? [] : [{ target: { containers: [container] }, mode, start: { reading: 10 }, readings: 40, origin: `demo failure ${i}` }];
      }),
    },
  });
  const running = fleet.run();
  say(`Simulating ${devices} reefers at ${rate} readings/s. Ctrl-C to stop.\n`);

  let lastInKafka = 0;
  const tick = setInterval(() => {
    const s = gateway.status();
    const perSecond = inKafka - lastInKafka;
    lastInKafka = inKafka;
    say(
      `sent ${fleet.progress().sent}  in Kafka ${inKafka} (+${perSecond}/s)  outbox ${s.outbox.count}  uplink ${s.uplink}  rejected ${s.stats.rejectedTotal}`,
    );
    const rows = [...latest.values()].sort((a, b) => a.container_id.localeCompare(b.container_id)).slice(0, 5);
    for (const r of rows) {
      const time = new Date(r.measurement_time).toISOString().replace('T', ' ').slice(0, 19);
      say(`  ${r.container_id} ${r.product_id ?? '---'}  ${time}  ${r.temperature.toFixed(2)} °C (setpoint ${r.target_temperature ?? '?'})  seq ${r.seq}`);
    }
    const a = analytics.stats();
    say(`alerts: ${a.anomalies} anomalies, ${a.maintenanceNeeded} maintenance needed (topic reefer-alerts)`);
    for (const alert of alerts.slice(-3)) {
      say(`  ${alert.containerId} ${alert.type === 'ContainerAnomaly' ? `${alert.rule}: ${alert.detail}` : `maintenance needed after ${alert.anomalyCount} anomalies (${alert.rules.join(', ')})`}`);
    }
  }, 1000);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      clearInterval(tick);
      await fleet.stop();
      await running;
      await gateway.close();
      await analytics.close();
      await view.close();
      await broker.close();
      rmSync(dataDir, { recursive: true, force: true });
      say(`\nStopped. ${inKafka} readings reached Kafka.`);
    })());
  process.on('SIGINT', () => void stop().then(() => process.exit(0)));
  process.on('SIGTERM', () => void stop().then(() => process.exit(0)));
  if (durationS !== undefined) setTimeout(() => void stop().then(() => process.exit(0)), durationS * 1000);
}

main().catch((error: unknown) => {
  process.stderr.write(`demo: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
