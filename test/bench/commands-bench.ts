/**
 * Commands end to end, timed: a real Kafka broker, a gateway in this process with commands enabled,
 * and a fleet of simulated devices that obey them while publishing readings. Publishes a burst of
 * setpoint commands to reefer-commands and prints, per command, the time from its publish to the
 * gateway storing it, to the device's `applied` answer, and to that status being visible on
 * reefer-command-status.
 *
 *   npx tsx test/bench/commands-bench.ts [--devices 200] [--commands-per-device 5] [--readings-per-second 200]
 */
import { parseArgs } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { decodeCommandStatus } from '../../cloud-bridge/commands.js';
import { createFleet } from '../../device-sim/fleet.js';
import { fleetContainerIds } from '../../device-sim/reefer-model.js';
import { createCommandTopics, publishCommands, testCommand } from '../harness/command-topics.js';
import { startTestGateway } from '../harness/gateway-under-test.js';
import { startKafkaBroker } from '../harness/kafka-broker.js';
import { readRawTopic } from '../harness/topic-reader.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '200' },
    'commands-per-device': { type: 'string', default: '5' },
    'readings-per-second': { type: 'string', default: '200' },
  },
});
const devices = Number(values.devices);
const perDevice = Number(values['commands-per-device']);
const readingsPerSecond = Number(values['readings-per-second']);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const broker = await startKafkaBroker();
try {
  const topics = await createCommandTopics(broker.bootstrap);
  const gatewayId = 'gw-bench';
  const gw = await startTestGateway(broker.bootstrap, { gatewayId, commands: { enabled: true, topic: topics.commands, statusTopic: topics.status } });
  const status = await readRawTopic(broker.bootstrap, topics.status);
  const applied = new Map<string, number>();
  let appliedCalls = 0;
  const fleet = createFleet({
    mqttUrl: gw.mqttUrl,
    devices,
    ratePerSecond: readingsPerSecond,
    seed: 1,
    qos: 1,
    form: 'canonical-json',
    commands: true,
    onCommand: (_containerId, command) => {
      appliedCalls += 1;
      applied.set(command.commandId, Date.now());
    },
  });
  void fleet.run();
  await delay(Math.max(3000, devices * 5));

  const commands = fleetContainerIds(devices).flatMap((containerId) =>
    Array.from({ length: perDevice }, (_, i) => testCommand({ containerId, gatewayId, kind: 'setpoint', targetTemperature: -i })),
  );
  const publishedMs = Date.now();
  await publishCommands(broker.bootstrap, topics.commands, commands);
  const deadline = Date.now() + 120_000;
  const seenApplied = new Map<string, number>();
  const stored = new Map<string, number>();
  while (seenApplied.size < commands.length && Date.now() < deadline) {
    for (const r of status.records()) {
      const s = decodeCommandStatus(r.value);
      if (s?.status === 'applied' && !seenApplied.has(s.commandId)) seenApplied.set(s.commandId, Date.now());
      if (s?.status === 'stored' && !stored.has(s.commandId)) stored.set(s.commandId, s.timeMs);
    }
    await delay(20);
  }
  const lat = (m: Map<string, number>) => [...m.values()].map((t) => t - publishedMs).sort((a, b) => a - b);
  const row = (name: string, xs: number[]) =>
    `${name.padEnd(40)} n=${String(xs.length).padStart(5)}  p50=${String(percentile(xs, 50)).padStart(6)} ms  p95=${String(percentile(xs, 95)).padStart(6)} ms  max=${String(xs.at(-1)).padStart(6)} ms`;
  const lastApplied = Math.max(...seenApplied.values());
  process.stdout.write(
    [
      `commands bench: ${devices} devices, ${commands.length} setpoint commands published in one burst, devices publishing ${readingsPerSecond} readings/s`,
      row('publish → stored at the gateway', lat(stored)),
      row('publish → applied by the device', lat(applied)),
      row('publish → applied visible in Kafka', lat(seenApplied)),
      `throughput: ${Math.round((seenApplied.size / (lastApplied - publishedMs)) * 1000)} commands/s from publish to applied status in Kafka`,
      `commands applied by devices: ${appliedCalls} (distinct ${applied.size}); gateway: ${JSON.stringify(gw.gateway.status().commands)}`,
      '',
    ].join('\n'),
  );
  await fleet.stop();
  await status.close();
  await gw.close();
} finally {
  await broker.close();
}
