import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { encodeCommandStatus, type CommandState } from '../../cloud-bridge/commands.js';
import { createKafkaClient } from '../../cloud-bridge/kafka-client.js';
import { openOutbox } from '../../gateway/outbox/sqlite-outbox.js';
import { encodeMarker } from '../../gateway/uplink/kafka-uplink.js';
import { createCommandTopics, readStatuses } from '../harness/command-topics.js';
import { startTestGateway } from '../harness/gateway-under-test.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('command statuses exactly once across a crash', () => {
  it('after a crash between the Kafka commit and the outbox delete, sends neither a committed status again nor loses the rest', async () => {
    const gatewayId = `gw-srec-${randomUUID().slice(0, 6)}`;
    const telemetryTopic = `recovery-${randomUUID().slice(0, 8)}`;
    const topics = await createCommandTopics(bootstrap);
    const dataDir = mkdtempSync(join(tmpdir(), 'reefer-status-recovery-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));

    // Three commands stored, two of them applied: five status rows waiting in the outbox.
    const outbox = openOutbox({ path: join(dataDir, 'outbox.db'), sync: 'full' });
    const row = (commandId: string, status: CommandState) => ({
      containerId: 'C01',
      timeMs: Date.now(),
      value: encodeCommandStatus({ commandId, containerId: 'C01', gatewayId, status, timeMs: Date.now() }),
    });
    for (const id of ['a', 'b', 'c']) {
      outbox.storeCommand({ commandId: id, containerId: 'C01', state: 'stored', expiresMs: Date.now() + 60_000, receivedMs: Date.now(), value: Buffer.from('{}') }, row(id, 'stored'));
    }
    for (const id of ['a', 'b']) outbox.setCommandState(id, 'stored', 'applied', row(id, 'applied'));
    const waiting = outbox.commandStatuses(10);
    const epoch = outbox.epoch();
    outbox.close();
    expect(waiting).toHaveLength(5);

    // The gateway died right after Kafka committed the first three, before deleting them.
    const kafka = createKafkaClient({ brokers: [bootstrap], clientId: 'crashed-gateway' });
    const admin = kafka.admin();
    await admin.ensureTopics([{ topic: telemetryTopic, partitions: 3 }]);
    await admin.close();
    const crashed = kafka.transactionalProducer({ transactionalId: `reefer-gateway.${gatewayId}` });
    await crashed.connect();
    const committed = waiting.slice(0, 3);
    await crashed.commit([{ topic: topics.status, records: committed.map((s) => ({ key: s.containerId, value: s.value })) }], {
      groupId: `reefer-gateway.${gatewayId}.progress`,
      topic: telemetryTopic,
      partition: 0,
      offset: 0,
      metadata: encodeMarker(epoch, [], undefined, [committed[0]!.id, committed[2]!.id]),
    });
    await crashed.close();

    const statuses = await readStatuses(bootstrap, topics.status);
    cleanups.push(() => statuses.close());
    const gw = await startTestGateway(bootstrap, {
      gatewayId,
      dataDir,
      kafka: { brokers: [bootstrap], topic: telemetryTopic, requestTimeoutMs: 5000, connectionTimeoutMs: 1000 },
      commands: { enabled: true, topic: topics.commands, statusTopic: topics.status },
    });
    cleanups.push(() => gw.close());

    await statuses.waitUntil((all) => all.length >= 5, 20_000, 'five statuses');
    // Long enough for a resend of the committed three to show up.
    await delay(1500);
    expect(statuses.statuses().map((s) => `${s.commandId}:${s.status}`)).toEqual(['a:stored', 'b:stored', 'c:stored', 'a:applied', 'b:applied']);
  });
});
