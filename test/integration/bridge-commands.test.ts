import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createBridgeCommandSource, type BridgeLink } from '../../cloud-bridge/bridge-link.js';
import { decodeCommand, type ReeferCommand } from '../../cloud-bridge/commands.js';
import { startTestBridge, startTestLink, type TestBridge } from '../harness/bridge-under-test.js';
import { createCommandTopics, eventually, publishCommands, testCommand } from '../harness/command-topics.js';

const bootstrap = inject('kafkaBootstrap');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function startLink(bridge: TestBridge, login: { username: string; password: string }, topic: string): BridgeLink {
  const link = startTestLink({ url: bridge.url, login, topic });
  cleanups.push(() => link.close());
  return link;
}

describe('commands to gateways through the bridge', () => {
  it('forwards only the gateway’s own commands, in order, and moves past one only after the gateway stored it', async () => {
    const topics = await createCommandTopics(bootstrap);
    const login = { username: `ship-cmd-${randomUUID().slice(0, 6)}`, password: 'commands please' };
    const bridge = await startTestBridge(bootstrap, { logins: [login], allow: [topics.status], commandsTopic: topics.commands });
    cleanups.push(() => bridge.close());
    const mine = [1, 2, 3, 4].map((i) => testCommand({ containerId: 'C0001', gatewayId: login.username, kind: 'setpoint', targetTemperature: i }));
    const other = testCommand({ containerId: 'C0002', gatewayId: 'another-ship', kind: 'defrost' });
    await publishCommands(bootstrap, topics.commands, [mine[0]!, other, mine[1]!]);

    // The first link stores the first command, fails the second once (it is tried again, in order),
    // and never finishes storing the third: the link goes away with it pending.
    const stored: ReeferCommand[] = [];
    let failedOnce = false;
    let releaseThird: (() => void) | undefined;
    const link = startLink(bridge, login, topics.status);
    const source = createBridgeCommandSource(link);
    source.start(async (value, headers) => {
      const command = decodeCommand(value);
      if (!command.ok) throw new Error(command.reason);
      expect(headers.gateway_id).toBe(login.username);
      if (command.value.commandId === mine[1]!.commandId && !failedOnce) {
        failedOnce = true;
        throw new Error('outbox busy');
      }
      if (command.value.commandId === mine[2]!.commandId) await new Promise<void>((resolve) => (releaseThird = resolve));
      stored.push(command.value);
    });
    await eventually(() => (stored.length === 2 ? true : undefined), 20_000, 'first two commands stored');
    expect(stored.map((c) => c.commandId)).toEqual([mine[0]!.commandId, mine[1]!.commandId]);
    expect(failedOnce).toBe(true);

    await publishCommands(bootstrap, topics.commands, [mine[2]!, mine[3]!]);
    await eventually(() => releaseThird, 20_000, 'third command delivered');
    // Gone before storing the third: the bridge must not move the group past it.
    await source.close();
    await link.close();
    releaseThird!();
    await eventually(() => (bridge.bridge.service.stats().commandsForwarded === 2 ? true : undefined), 5000, 'two commands counted as stored');

    // The gateway comes back (on a new link): the third and fourth arrive, not the first two again.
    const again: string[] = [];
    const link2 = startLink(bridge, login, topics.status);
    const source2 = createBridgeCommandSource(link2);
    cleanups.push(() => source2.close());
    source2.start(async (value) => {
      const command = decodeCommand(value);
      if (command.ok) again.push(command.value.commandId);
    });
    await eventually(() => (again.length >= 2 ? true : undefined), 30_000, 'third and fourth command after the reconnect');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(again).toEqual([mine[2]!.commandId, mine[3]!.commandId]);
    expect(stored.map((c) => c.commandId)).not.toContain(other.commandId);
  });
});
