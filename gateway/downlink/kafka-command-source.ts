/**
 * Commands straight from Kafka (uplink mode `kafka`): a consumer group of this gateway alone over
 * `reefer-commands`, taking the records whose `gateway_id` header names this gateway. A batch's
 * offsets are committed only after `store` resolved for every record in it, so a command is never
 * skipped, and one read twice (after a crash between the store and the commit) is dropped by the
 * store's deduplication.
 */
import type { Logger } from 'pino';
import type { ConsumerOptions, KafkaConsumerPort } from '../../cloud-bridge/kafka-client.js';
import { GATEWAY_ID_HEADER } from '../../cloud-bridge/commands.js';
import type { CommandSource } from './command-source.js';

export interface KafkaCommandSourceOptions {
  gatewayId: string;
  topic: string;
  /** Wait before trying again after the consumer could not start (Kafka down, topic missing). */
  retryMs: number;
  /** Longest close() waits for the consumer to leave its group. */
  closeTimeoutMs: number;
}

export interface KafkaCommandSourceDeps {
  createConsumer(options: ConsumerOptions): KafkaConsumerPort;
  logger: Logger;
}

export function commandsGroupId(gatewayId: string): string {
  return `reefer-gateway.${gatewayId}.commands`;
}

export function createKafkaCommandSource(options: KafkaCommandSourceOptions, deps: KafkaCommandSourceDeps): CommandSource {
  const log = deps.logger.child({ component: 'command-source' });
  let consumer: KafkaConsumerPort | undefined;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;

  function connect(store: (value: Buffer, headers: Record<string, string>) => Promise<void>): void {
    if (stopped) return;
    const c = deps.createConsumer({ groupId: commandsGroupId(options.gatewayId), topics: [options.topic], fromBeginning: true, maxWaitTimeMs: 500 });
    consumer = c;
    c.start(async (records) => {
      for (const r of records) {
        if (stopped) throw new Error('command source closing; the batch is read again after the restart');
        if (r.value && r.headers[GATEWAY_ID_HEADER] === options.gatewayId) await store(r.value, r.headers);
      }
    }).then(
      () => log.info({ topic: options.topic, groupId: commandsGroupId(options.gatewayId) }, 'reading commands'),
      (error: unknown) => {
        if (stopped) return;
        log.warn({ err: error instanceof Error ? error.message : String(error), retryInMs: options.retryMs }, 'could not read commands; retrying');
        consumer = undefined;
        void c.close().catch(() => undefined);
        retryTimer = setTimeout(() => connect(store), options.retryMs);
        retryTimer.unref();
      },
    );
  }

  return {
    start(store) {
      if (consumer || stopped) return;
      connect(store);
    },
    close() {
      closing ??= (async () => {
        stopped = true;
        if (retryTimer) clearTimeout(retryTimer);
        const c = consumer;
        consumer = undefined;
        if (!c) return;
        // A hung broker must not hold up the stop; uncommitted offsets are read again after the restart.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.closeTimeoutMs);
          c.close().then(
            () => {
              clearTimeout(timer);
              resolve();
            },
            () => {
              clearTimeout(timer);
              resolve();
            },
          );
        });
      })();
      return closing;
    },
  };
}
