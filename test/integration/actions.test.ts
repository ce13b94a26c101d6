import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { decodeDeadLetteredAction, decodePendingAction, maintenanceCommandId, type MaintenanceOrder } from '../../cloud-bridge/actions.js';
import { createActionsService, type ActionsService } from '../../cloud-bridge/actions-service.js';
import { encodeAlert, type ContainerAnomaly, type MaintenanceNeeded } from '../../cloud-bridge/alerts.js';
import { decodeCommand } from '../../cloud-bridge/commands.js';
import { createKafkaClient } from '../../cloud-bridge/kafka-client.js';
import { createLogger } from '../../gateway/ops/logger.js';
import { createDeviceCommandHandler } from '../../device-sim/device-commands.js';
import { connectDevice, type DeviceConnection } from '../../device-sim/mqtt-transport.js';
import { createReefer } from '../../device-sim/reefer-model.js';
import { eventually, readStatuses } from '../harness/command-topics.js';
import { startTestGateway, type GatewayUnderTest } from '../harness/gateway-under-test.js';
import { readRawTopic } from '../harness/topic-reader.js';

const bootstrap = inject('kafkaBootstrap');

interface OrderRequest {
  atMs: number;
  idempotencyKey: string | undefined;
  order: MaintenanceOrder;
  status: number;
}

/** A real maintenance-order endpoint: C-ok always succeeds, C-flaky fails twice first, C-down always fails. */
async function startOrderEndpoint(): Promise<{ url: string; requests: OrderRequest[]; close(): Promise<void> }> {
  const requests: OrderRequest[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const order = JSON.parse(Buffer.concat(chunks).toString('utf8')) as MaintenanceOrder;
      const earlier = requests.filter((r) => r.order.containerId === order.containerId).length;
      const status = order.containerId === 'C-down' || (order.containerId === 'C-flaky' && earlier < 2) ? 503 : 201;
      requests.push({ atMs: Date.now(), idempotencyKey: req.headers['idempotency-key'] as string | undefined, order, status });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: status < 300 }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/orders`, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function maintenanceNeeded(gatewayId: string, containerId: string, seq: number): MaintenanceNeeded {
  return { type: 'MaintenanceNeeded', alertId: `${gatewayId}/${seq}/maintenance`, containerId, gatewayId, timeMs: Date.now(), anomalyCount: 3, rules: ['co2', 'co2', 'power-off'] };
}

let service: ActionsService | undefined;
let gw: GatewayUnderTest | undefined;
let device: DeviceConnection | undefined;
let endpoint: Awaited<ReturnType<typeof startOrderEndpoint>> | undefined;
const readers: { close(): Promise<void> }[] = [];

afterEach(async () => {
  await service?.close();
  await device?.close();
  await gw?.close();
  await endpoint?.close();
  await Promise.all(readers.splice(0).map((r) => r.close()));
  service = endpoint = gw = device = undefined;
});

describe('maintenance actions consumer', () => {
  it('places an order and issues a maintenance command per MaintenanceNeeded once (which the container\'s device applies), retries a failing endpoint through the retry topic after its delay, and dead-letters one that keeps failing after 3 attempts with the reason', async () => {
    const suffix = randomUUID().slice(0, 8);
    const topics = {
      alerts: `reefer-alerts-${suffix}`,
      retry: `reefer-alerts-retry-${suffix}`,
      dlq: `reefer-alerts-dlq-${suffix}`,
      commands: `reefer-commands-${suffix}`,
      status: `reefer-command-status-${suffix}`,
    };
    const gatewayId = `gw-ship-${suffix}`;
    const kafka = createKafkaClient({ brokers: [bootstrap], clientId: 'test-actions' });
    endpoint = await startOrderEndpoint();
    const baseDelayMs = 300;
    service = createActionsService(
      {
        alertsTopic: topics.alerts,
        retryTopic: topics.retry,
        dlqTopic: topics.dlq,
        commandsTopic: topics.commands,
        groupId: `reefer-actions-${suffix}`,
        orderUrl: endpoint.url,
        orderTimeoutMs: 2000,
        retry: { maxAttempts: 3, baseDelayMs, maxDelayMs: 5000 },
        commandTtlMs: 3_600_000,
        rememberAlerts: 1000,
        createTopics: true,
      },
      { kafka, logger: createLogger((process.env.REEFER_TEST_LOG ?? 'silent') as 'silent'), now: Date.now },
    );
    await service.start();

    // The gateway that serves C-ok, and C-ok's device, which obeys the maintenance command.
    gw = await startTestGateway(bootstrap, { gatewayId, commands: { enabled: true, topic: topics.commands, statusTopic: topics.status } });
    const statuses = await readStatuses(bootstrap, topics.status);
    readers.push(statuses);
    const handler = createDeviceCommandHandler(createReefer({ containerId: 'C-ok', seed: 1 }));
    device = await connectDevice({ url: gw.mqttUrl, clientId: 'C-ok', qos: 1 });
    device.onMessage((_topic, payload) => {
      const ack = handler.handle(payload);
      if (ack) void device!.publish('reefer/C-ok/commands/ack', ack);
    });
    await device.subscribe('reefer/C-ok/commands');

    const ok = maintenanceNeeded(gatewayId, 'C-ok', 101);
    const flaky = maintenanceNeeded(gatewayId, 'C-flaky', 202);
    const down = maintenanceNeeded(gatewayId, 'C-down', 303);
    const anomaly: ContainerAnomaly = {
      type: 'ContainerAnomaly', alertId: `${gatewayId}/100/co2`, containerId: 'C-ok', gatewayId, timeMs: Date.now(),
      rule: 'co2', seq: 100, measurementTimeMs: Date.now(), detail: 'CO2 12.1 > 10.8', anomalyCount: 1,
    };
    const producer = kafka.producer();
    await producer.connect();
    // The repeat of C-ok's alert (a redelivery upstream) must not lead to a second order or command.
    await producer.send(topics.alerts, [anomaly, ok, flaky, down, ok].map((a) => ({ key: a.containerId, value: encodeAlert(a) })));
    await producer.close();

    const dlq = await readRawTopic(bootstrap, topics.dlq);
    readers.push(dlq);
    await eventually(() => (dlq.records().length >= 1 && endpoint!.requests.filter((r) => r.order.containerId === 'C-flaky').length >= 3 ? true : undefined), 30_000, 'dead letter and the flaky order');
    const retries = await readRawTopic(bootstrap, topics.retry);
    const commands = await readRawTopic(bootstrap, topics.commands);
    readers.push(retries, commands);
    await eventually(() => (retries.records().length >= 4 && commands.records().length >= 3 ? true : undefined), 10_000, 'retry and command records');

    const requestsOf = (containerId: string) => endpoint!.requests.filter((r) => r.order.containerId === containerId);
    expect(requestsOf('C-ok').map((r) => r.status)).toEqual([201]);
    expect(requestsOf('C-flaky').map((r) => r.status)).toEqual([503, 503, 201]);
    expect(requestsOf('C-down').map((r) => r.status)).toEqual([503, 503, 503]);
    // Every request carries the alert id as its idempotency key.
    expect(endpoint.requests.every((r) => r.idempotencyKey === r.order.alertId)).toBe(true);
    // No retry is made before its not-before time: the delay doubles after each failure.
    const flakyTimes = requestsOf('C-flaky').map((r) => r.atMs);
    expect(flakyTimes[1]! - flakyTimes[0]!).toBeGreaterThanOrEqual(baseDelayMs);
    expect(flakyTimes[2]! - flakyTimes[1]!).toBeGreaterThanOrEqual(2 * baseDelayMs);

    const pending = retries.records().map((r) => decodePendingAction(r.value)!);
    expect(pending.map((p) => `${p.alert.containerId}#${p.attempts}`).sort()).toEqual(['C-down#1', 'C-down#2', 'C-flaky#1', 'C-flaky#2']);
    expect(pending.every((p) => p.commandIssued && /503/.test(p.lastError))).toBe(true);

    const dead = dlq.records().map((r) => decodeDeadLetteredAction(r.value)!);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ attempts: 3, alert: { alertId: down.alertId, containerId: 'C-down' } });
    expect(dead[0]!.reason).toMatch(/gave up after 3 attempts: order endpoint .* answered 503/);

    // One maintenance command per alert, addressed to the gateway that serves the container.
    const issued = commands.records().map((r) => ({ gateway: r.headers.gateway_id, command: decodeCommand(r.value) }));
    expect(issued.map((c) => (c.command.ok ? c.command.value.commandId : c.command.reason)).sort()).toEqual(
      [down, flaky, ok].map((a) => maintenanceCommandId(a.alertId)).sort(),
    );
    expect(issued.every((c) => c.gateway === gatewayId && c.command.ok && c.command.value.kind === 'maintenance')).toBe(true);
    // The device applied its maintenance command once; the others wait at the gateway for their devices.
    await statuses.waitUntil((all) => all.some((s) => s.commandId === maintenanceCommandId(ok.alertId) && s.status === 'applied'), 20_000, 'C-ok applied');
    expect(handler.handled()).toBe(1);
    expect(service.stats()).toMatchObject({ alerts: 4, duplicates: 1, ignored: 1, commandsIssued: 3, ordersPlaced: 2, deadLettered: 1, retriesScheduled: 4 });
  });
});
