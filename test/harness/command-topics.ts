/** Helpers for tests of commands: fresh topic names, publishing a command, reading statuses. */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { commandRecord, decodeCommandStatus, type CommandStatus, type ReeferCommand } from '../../cloud-bridge/commands.js';
import { createKafkaClient } from '../../cloud-bridge/kafka-client.js';
import { readRawTopic } from './topic-reader.js';

export interface CommandTopics {
  commands: string;
  status: string;
}

/**
 * Runs `operation` again while it fails with a retriable error: a topic just created is listed before
 * every broker's metadata has its partitions, more so while other tests create topics too.
 */
async function retrying<T>(operation: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= 10 || (error as { retriable?: unknown }).retriable !== true) throw error;
      await delay(100 * attempt);
    }
  }
}

/** Topics of one test, created before any gateway subscribes to them. */
export async function createCommandTopics(bootstrap: string): Promise<CommandTopics> {
  const suffix = randomUUID().slice(0, 8);
  const topics = { commands: `reefer-commands-${suffix}`, status: `reefer-command-status-${suffix}` };
  await retrying(async () => {
    const admin = createKafkaClient({ brokers: [bootstrap], clientId: 'test-command-topics' }).admin();
    try {
      await admin.ensureTopics([{ topic: topics.commands, partitions: 3 }, { topic: topics.status, partitions: 3 }]);
    } finally {
      await admin.close();
    }
  });
  return topics;
}

export async function publishCommands(bootstrap: string, topic: string, commands: readonly ReeferCommand[]): Promise<void> {
  await retrying(async () => {
    const producer = createKafkaClient({ brokers: [bootstrap], clientId: 'test-command-publisher' }).producer();
    await producer.connect();
    try {
      await producer.send(topic, commands.map(commandRecord));
    } finally {
      await producer.close();
    }
  });
}

export function testCommand(fields: Partial<ReeferCommand> & Pick<ReeferCommand, 'containerId' | 'gatewayId' | 'kind'>, ttlMs = 60_000): ReeferCommand {
  const issuedMs = Date.now();
  return { commandId: `cmd-${randomUUID()}`, issuedMs, expiresMs: issuedMs + ttlMs, ...fields };
}

export interface StatusReader {
  statuses(): CommandStatus[];
  /** Resolves with every status seen once `predicate` holds; rejects after timeoutMs. */
  waitUntil(predicate: (statuses: CommandStatus[]) => boolean, timeoutMs: number, what: string): Promise<CommandStatus[]>;
  close(): Promise<void>;
}

export async function readStatuses(bootstrap: string, topic: string): Promise<StatusReader> {
  const raw = await readRawTopic(bootstrap, topic);
  const statuses = (): CommandStatus[] =>
    raw
      .records()
      .map((r) => decodeCommandStatus(r.value))
      .filter((s): s is CommandStatus => s !== null);
  return {
    statuses,
    async waitUntil(predicate, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(statuses())) {
        if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms; statuses: ${JSON.stringify(statuses())}`);
        await delay(100);
      }
      return statuses();
    },
    close: () => raw.close(),
  };
}

/** Polls until `check` returns a value other than undefined; rejects after timeoutMs. */
export async function eventually<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms`);
    await delay(100);
  }
}
