import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { CommandStatus } from '../../cloud-bridge/commands.js';
import { createDeviceCommandHandler, type DeviceCommandAck } from '../../device-sim/device-commands.js';
import { createFleet } from '../../device-sim/fleet.js';
import { connectDevice } from '../../device-sim/mqtt-transport.js';
import { createReefer, fleetContainerIds } from '../../device-sim/reefer-model.js';
import { startTestBridge, type TestBridge } from '../harness/bridge-under-test.js';
import { createCommandTopics, eventually, publishCommands, readStatuses, testCommand, type CommandTopics } from '../harness/command-topics.js';
import { freePort } from '../harness/free-port.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { readTopic } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Site {
  gatewayId: string;
  topic: string;
  topics: CommandTopics;
  password: string;
  dataDir: string;
  bridge: TestBridge;
}

/** A gateway's login at a bridge that may write its telemetry, gateway status and command statuses, and feeds it commands. */
async function newSite(prefix: string): Promise<Site> {
  const gatewayId = `${prefix}-${randomUUID().slice(0, 6)}`;
  const topic = `${prefix}-${randomUUID().slice(0, 8)}`;
  const password = `pw-${gatewayId}`;
  const dataDir = mkdtempSync(join(tmpdir(), `reefer-${prefix}-`));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const topics = await createCommandTopics(bootstrap);
  const bridge = await startTestBridge(bootstrap, {
    logins: [{ username: gatewayId, password }],
    allow: [topic, `${topic}-deadletter`, `${topic}-status`, topics.status],
    commandsTopic: topics.commands,
    createTopics: true,
  });
  cleanups.push(() => bridge.close());
  return { gatewayId, topic, topics, password, dataDir, bridge };
}

/** A gateway in uplink mode mqtt with commands on: no Kafka address it could reach, so commands and statuses can only go through the bridge. */
async function startBridgedGateway(site: Site, mqttPort = 0): Promise<GatewayUnderTest> {
  return startTestGateway(bootstrap, {
    gatewayId: site.gatewayId,
    dataDir: site.dataDir,
    http: { enabled: false },
    mqtt: { port: mqttPort, limits: { readingsPerSecond: 0 } },
    kafka: { brokers: ['127.0.0.1:1'], topic: site.topic, deadLetterTopic: `${site.topic}-deadletter` },
    uplink: {
      mode: 'mqtt',
      bridge: { urls: [site.bridge.url], password: site.password, reconnectMinMs: 100, reconnectMaxMs: 500, connectTimeoutMs: 2000 },
      statusTopic: `${site.topic}-status`,
      minBackoffMs: 100,
      maxBackoffMs: 500,
      idlePollMs: 20,
      closeTimeoutMs: 2000,
    },
    commands: { enabled: true, topic: site.topics.commands, statusTopic: site.topics.status },
  });
}

function statesOf(all: CommandStatus[], commandId: string): string[] {
  return all.filter((s) => s.commandId === commandId).map((s) => s.status);
}

describe('commands round trip through the bridge (uplink mode mqtt)', () => {
  it('a setpoint command from the commands topic reaches the device through bridge and gateway, is applied once, reported applied once through the bridge, and later readings carry the new setpoint', async () => {
    const site = await newSite('bridge-cmd-rt');
    const gw = await startBridgedGateway(site);
    cleanups.push(() => gw.close());
    const telemetry = await readTopic(bootstrap, site.topic);
    cleanups.push(() => telemetry.close());
    const statuses = await readStatuses(bootstrap, site.topics.status);
    cleanups.push(() => statuses.close());

    const applied: { containerId: string; commandId: string; ack: DeviceCommandAck }[] = [];
    const [target, other] = fleetContainerIds(2);
    // One simulated minute per reading, so the new setpoint shows within seconds of wall time.
    const fleet = createFleet({
      mqttUrl: gw.mqttUrl,
      devices: 2,
      ratePerSecond: 20,
      intervalMs: 60_000,
      seed: 13,
      qos: 1,
      form: 'canonical-json',
      commands: true,
      onCommand: (containerId, command, ack) => applied.push({ containerId, commandId: command.commandId, ack }),
    });
    cleanups.push(() => fleet.stop());
    void fleet.run();

    // Telemetry reaches Kafka through the bridge before the command goes out.
    const before = await eventually(() => {
      const rows = telemetry.records().filter((r) => r.key === target);
      return rows.length >= 5 ? rows : undefined;
    }, 20_000, `readings of ${target}`);
    expect(gw.gateway.status().bridge?.connectedUrl).toBe(site.bridge.url);
    const oldSetpoint = before[0]!.value.target_temperature!;
    const newSetpoint = oldSetpoint - 10;

    const command = testCommand({ containerId: target!, gatewayId: site.gatewayId, kind: 'setpoint', targetTemperature: newSetpoint });
    await publishCommands(bootstrap, site.topics.commands, [command]);
    await statuses.waitUntil((all) => statesOf(all, command.commandId).includes('applied'), 20_000, 'status applied');

    // Later readings, also through the bridge, carry the new setpoint; once one does, all after it do.
    const rowsOfTarget = () => telemetry.records().filter((r) => r.key === target);
    await eventually(() => (rowsOfTarget().filter((r) => r.value.target_temperature === newSetpoint).length >= 20 ? true : undefined), 20_000, 'readings with the new setpoint');
    const sequence = rowsOfTarget().map((r) => r.value.target_temperature);
    const firstNew = sequence.indexOf(newSetpoint);
    expect(sequence.slice(0, firstNew).every((t) => t === oldSetpoint)).toBe(true);
    expect(sequence.slice(firstNew).every((t) => t === newSetpoint)).toBe(true);
    expect(telemetry.records().filter((r) => r.key === other).every((r) => r.value.target_temperature !== newSetpoint)).toBe(true);

    // Each state once, in order (delivered, the device's PUBACK, may be overtaken by its answer);
    // a status repeated on the way through the bridge would show up here.
    const mine = statuses.statuses().filter((s) => s.commandId === command.commandId);
    expect(mine.map((s) => s.status).filter((s) => s !== 'delivered')).toEqual(['stored', 'applied']);
    expect(mine.filter((s) => s.status === 'delivered').length).toBeLessThanOrEqual(1);
    expect(mine.every((s) => s.containerId === target && s.gatewayId === site.gatewayId)).toBe(true);
    expect(applied).toEqual([{ containerId: target, commandId: command.commandId, ack: { commandId: command.commandId, status: 'applied' } }]);
    expect(gw.gateway.status().commands).toMatchObject({ stored: 1, applied: 1, duplicates: 0, pending: 0 });
    expect(site.bridge.bridge.service.stats().commandsForwarded).toBe(1);
  });

  it('delivers a command published while the gateway was down once after it restarts on the same data folder, and reports it applied once', async () => {
    const site = await newSite('bridge-cmd-out');
    const mqttPort = await freePort();
    let gw: GatewayUnderTest | undefined = await startBridgedGateway(site, mqttPort);
    cleanups.push(() => gw?.close());
    const statuses = await readStatuses(bootstrap, site.topics.status);
    cleanups.push(() => statuses.close());

    const containerId = 'C-bridged';
    const reefer = createReefer({ containerId, seed: 4, product: 'P05' });
    const handler = createDeviceCommandHandler(reefer);
    const received: string[] = [];
    const openDevice = async () => {
      const connection = await connectDevice({ url: gw!.mqttUrl, clientId: containerId, qos: 1, reconnectPeriodMs: 0 });
      connection.onMessage((_topic, payload) => {
        received.push((JSON.parse(payload.toString('utf8')) as { commandId: string }).commandId);
        const ack = handler.handle(payload);
        if (ack) void connection.publish(`reefer/${containerId}/commands/ack`, ack).catch(() => undefined);
      });
      expect(await connection.subscribe(`reefer/${containerId}/commands`)).toBe(1);
      return connection;
    };

    // While the gateway is up, a first command makes the whole trip: the feed through the bridge works.
    let device = await openDevice();
    cleanups.push(() => device.close());
    const first = testCommand({ containerId, gatewayId: site.gatewayId, kind: 'setpoint', targetTemperature: 2 });
    await publishCommands(bootstrap, site.topics.commands, [first]);
    await statuses.waitUntil((all) => statesOf(all, first.commandId).includes('applied'), 20_000, 'first command applied');
    await device.close();
    await gw.close();
    gw = undefined;

    // Sent while the gateway is away: it waits in Kafka, and the bridge has no one to feed it to.
    const whileDown = testCommand({ containerId, gatewayId: site.gatewayId, kind: 'setpoint', targetTemperature: -21 });
    await publishCommands(bootstrap, site.topics.commands, [whileDown]);
    await delay(500);
    expect(statesOf(statuses.statuses(), whileDown.commandId)).toEqual([]);

    gw = await startBridgedGateway(site, mqttPort);
    await statuses.waitUntil((all) => statesOf(all, whileDown.commandId).includes('stored'), 20_000, 'command stored after the restart');
    device = await openDevice();
    await statuses.waitUntil((all) => statesOf(all, whileDown.commandId).includes('applied'), 20_000, 'command applied after the restart');
    // Time for a repeat (from Kafka, the bridge or the gateway's outbox) to reach the device or the status topic.
    await delay(1000);

    const all = statuses.statuses();
    expect(received).toEqual([first.commandId, whileDown.commandId]);
    expect(handler.handled()).toBe(2);
    expect(reefer.targetTemperature()).toBe(-21);
    for (const command of [first, whileDown]) {
      const states = statesOf(all, command.commandId);
      expect(states.filter((s) => s !== 'delivered'), command.commandId).toEqual(['stored', 'applied']);
      expect(states.filter((s) => s === 'delivered').length).toBeLessThanOrEqual(1);
    }
    // The restarted gateway stored only the command sent while it was down, and the bridge fed each command once.
    expect(gw.gateway.status().commands).toMatchObject({ stored: 1, applied: 1, pending: 0 });
    expect(site.bridge.bridge.service.stats().commandsForwarded).toBe(2);
  });
});
