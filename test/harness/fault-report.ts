/** Waits for every acknowledged reading to reach Kafka, then prints and returns the delivery counts. */
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { checkDelivery, readingKey, type DeliveryReport } from './delivery-check.js';
import type { TopicReader } from './topic-reader.js';

export async function awaitDelivery(
  label: string,
  reader: TopicReader,
  acknowledged: readonly ReeferReading[],
  options: {
    timeoutMs: number;
    quietMs: number;
    /** What the system under test says of itself, printed when readings are missing (where they went). */
    diagnose?: () => unknown;
  },
): Promise<DeliveryReport> {
  const wanted = new Set(acknowledged.map((r) => readingKey(r.container_id, r.measurement_time)));
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const have = new Set(reader.records().map((r) => readingKey(r.value.container_id, r.value.measurement_time)));
    let missing = 0;
    for (const key of wanted) if (!have.has(key)) missing += 1;
    if (missing === 0 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const report = checkDelivery(acknowledged, await reader.settle(options.quietMs));
  process.stdout.write(
    `[${label}] acknowledged ${report.acknowledged} / delivered ${report.delivered} / duplicated ${report.duplicated} / lost ${report.lost}` +
      (report.unexpected > 0 ? ` / delivered without acknowledgement ${report.unexpected}` : '') +
      '\n',
  );
  if (report.lost > 0) {
    const have = new Set(reader.records().map((r) => readingKey(r.value.container_id, r.value.measurement_time)));
    const missing = acknowledged.filter((r) => !have.has(readingKey(r.container_id, r.measurement_time))).slice(0, 10);
    process.stdout.write(`[${label}] missing: ${JSON.stringify(missing.map((r) => ({ container: r.container_id, measurementTime: r.measurement_time })))}\n`);
    if (options.diagnose) process.stdout.write(`[${label}] state: ${JSON.stringify(options.diagnose())}\n`);
  }
  return report;
}
