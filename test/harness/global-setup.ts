import type { TestProject } from 'vitest/node';
import { startKafkaBroker } from './kafka-broker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBootstrap: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const broker = await startKafkaBroker();
  project.provide('kafkaBootstrap', broker.bootstrap);
  return () => broker.close();
}
