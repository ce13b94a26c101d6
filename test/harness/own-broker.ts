/**
 * For a test file that stops or freezes Kafka: a broker of its own, started before the file's tests,
 * and the gateways they start on it, all closed after them.
 */
import { afterAll, beforeAll } from 'vitest';
import { startTestGateway, type GatewayUnderTest } from './gateway-under-test.js';
import { startKafkaBroker, type KafkaBroker } from './kafka-broker.js';

export interface OwnBroker {
  broker(): KafkaBroker;
  /** A gateway on this broker (startTestGateway's overrides), closed after the file's tests. */
  startGateway(overrides?: Record<string, unknown>): Promise<GatewayUnderTest>;
}

export function ownBroker(): OwnBroker {
  let broker: KafkaBroker | undefined;
  const gateways: GatewayUnderTest[] = [];
  beforeAll(async () => {
    broker = await startKafkaBroker();
  });
  afterAll(async () => {
    for (const gw of gateways) await gw.close();
    await broker?.close();
  });
  const started = (): KafkaBroker => {
    if (!broker) throw new Error('the broker starts in beforeAll');
    return broker;
  };
  return {
    broker: started,
    async startGateway(overrides = {}) {
      const gw = await startTestGateway(started().bootstrap, overrides);
      gateways.push(gw);
      return gw;
    },
  };
}
