import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { runBridgeCli } from '../../cloud-bridge/cli.js';
import { createDeviceCommandHandler, type DeviceCommandAck } from '../../device-sim/device-commands.js';
import { createFleet, type Fleet } from '../../device-sim/fleet.js';
import { connectDevice, type DeviceConnection } from '../../device-sim/mqtt-transport.js';
import { createReefer, fleetContainerIds } from '../../device-sim/reefer-model.js';
import { createCommandTopics, eventually, publishCommands, readStatuses, testCommand, type StatusReader } from '../harness/command-topics.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { readTopic, type TopicReader } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');

let gw: GatewayUnderTest | undefined;
let fleet: Fleet | undefined;
let telemetry: TopicReader | undefined;
let statuses: StatusReader | undefined;
let device: DeviceConnection | undefined;

afterEach(async () => {
  await device?.close();
  await fleet?.stop();
  await gw?.close();
  await telemetry?.close();
  await statuses?.close();
  fleet = gw = telemetry = statuses = device = undefined;
});

describe('commands round trip', () => {
  it('a setpoint command from reefer-commands reaches the simulated device through a real gateway, is applied once, reported applied, and later readings follow the new setpoint', async () => {
    const topics = await createCommandTopics(bootstrap);
    const gatewayId = `gw-cmd-${randomUUID().slice(0, 8)}`;
    gw = await startTestGateway(bootstrap, {
      gatewayId,
      commands: { enabled: true, topic: topics.commands, statusTopic: topics.status },
      uplink: { minBackoffMs: 100, maxBackoffMs: 1000, idlePollMs: 20 },
    });
    telemetry = await readTopic(bootstrap, gw.topic);
    statuses = await readStatuses(bootstrap, topics.status);

    const applied: { containerId: string; commandId: string; ack: DeviceCommandAck }[] = [];
    const [target, other] = fleetContainerIds(2);
    // One simulated minute per reading, so the setpoint change plays out in seconds of wall time.
    fleet = createFleet({
      mqttUrl: gw.mqttUrl,
      devices: 2,
      ratePerSecond: 20,
      intervalMs: 60_000,
      seed: 7,
      qos: 1,
      form: 'canonical-json',
      commands: true,
      onCommand: (containerId, command, ack) => applied.push({ containerId, commandId: command.commandId, ack }),
    });
    void fleet.run();

    const before = await eventually(() => {
      const rows = telemetry!.records().filter((r) => r.key === target);
      return rows.length >= 5 ? rows : undefined;
    }, 20_000, `readings of ${target}`);
    const oldSetpoint = before[0]!.value.target_temperature!;
    const newSetpoint = oldSetpoint - 10;

    const command = testCommand({ containerId: target!, gatewayId, kind: 'setpoint', targetTemperature: newSetpoint });
    await publishCommands(bootstrap, topics.commands, [command]);

    const seen = await statuses.waitUntil((all) => all.some((s) => s.commandId === command.commandId && s.status === 'applied'), 20_000, 'status applied');
    const mine = seen.filter((s) => s.commandId === command.commandId);
    // Each state once, in order; delivered (the device's PUBACK) is skipped when the device's answer arrives first.
    expect(mine.map((s) => s.status).filter((s) => s !== 'delivered')).toEqual(['stored', 'applied']);
    expect(mine.filter((s) => s.status === 'delivered').length).toBeLessThanOrEqual(1);
    expect(mine.every((s) => s.containerId === target && s.gatewayId === gatewayId)).toBe(true);
    expect(applied).toEqual([{ containerId: target, commandId: command.commandId, ack: { commandId: command.commandId, status: 'applied' } }]);

    // The device's later readings carry the new setpoint, and the temperature follows it down.
    const after = await eventually(() => {
      const rows = telemetry!.records().filter((r) => r.key === target && r.value.target_temperature === newSetpoint);
      return rows.length >= 60 ? rows : undefined;
    }, 30_000, 'readings with the new setpoint');
    const late = after.slice(-10).map((r) => r.value.temperature!);
    const lateMean = late.reduce((a, b) => a + b, 0) / late.length;
    expect(lateMean).toBeLessThan(oldSetpoint - 6);
    expect(Math.abs(lateMean - newSetpoint)).toBeLessThan(3);
    // Readings taken before the command kept the old setpoint; the other container never changed.
    expect(before.every((r) => r.value.target_temperature === oldSetpoint)).toBe(true);
    expect(telemetry.records().filter((r) => r.key === other).every((r) => r.value.target_temperature !== newSetpoint)).toBe(true);
    expect(gw.gateway.status().commands).toMatchObject({ stored: 1, applied: 1, expired: 0, pending: 0, duplicates: 0 });
  });

  it('reefer-bridge command --wait publishes a defrost command, prints its id and statuses, and exits 0 once the device applied it; a second defrost while one runs is rejected, exit 1', async () => {
    const topics = await createCommandTopics(bootstrap);
    const gatewayId = `gw-cmd-${randomUUID().slice(0, 8)}`;
    gw = await startTestGateway(bootstrap, { gatewayId, commands: { enabled: true, topic: topics.commands, statusTopic: topics.status } });
    const containerId = 'C-cli';
    const reefer = createReefer({ containerId, seed: 5, product: 'P02' });
    const handler = createDeviceCommandHandler(reefer);
    device = await connectDevice({ url: gw.mqttUrl, clientId: containerId, qos: 1 });
    device.onMessage((_topic, payload) => {
      const ack = handler.handle(payload);
      if (ack) void device!.publish(`reefer/${containerId}/commands/ack`, ack);
    });
    await device.subscribe(`reefer/${containerId}/commands`);

    const run = async (args: string[]) => {
      let out = '';
      let err = '';
      const code = await runBridgeCli(
        ['command', '--kafka-brokers', bootstrap, '--topic', topics.commands, '--status-topic', topics.status, '--container', containerId, '--gateway', gatewayId, '--ttl', '2m', '--wait', '--wait-timeout', '30s', ...args],
        { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) }, env: {}, stopRequested: new Promise(() => {}) },
      );
      return { code, lines: out.trim().split('\n'), err };
    };
    const first = await run(['--defrost']);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.lines[0]).toMatch(/^cmd-/);
    expect(first.lines.slice(1).filter((l) => l !== 'delivered')).toEqual(['stored', 'applied']);
    expect(reefer.state().defrostRemainingMin).toBeGreaterThan(0);

    const second = await run(['--defrost']);
    expect(second.code).toBe(1);
    expect(second.lines.at(-1)).toBe('rejected: a defrost is already running');

    const usage = await run(['--setpoint', '4', '--maintenance']);
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/expected exactly one of --setpoint, --maintenance and --defrost/);
  });
});
