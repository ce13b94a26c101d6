/**
 * Compares what devices were acknowledged for with what reached Kafka: every acknowledged reading
 * once, nothing else, values intact, per-container order kept.
 */
import { REFERENCE_COLUMNS, type ReeferReading } from '../../schemas/reefer-reading.js';
import type { DeliveredRecord } from './topic-reader.js';

export interface DeliveryReport {
  acknowledged: number;
  delivered: number;
  duplicated: number;
  lost: number;
  /** Records whose sensor values differ from what the device sent. */
  altered: string[];
  /** Records in Kafka that no device was acknowledged for. */
  unexpected: number;
  /** Containers whose readings are out of measurement order within their partition. */
  outOfOrder: string[];
  /** Records whose key is not their container id. */
  wrongKey: number;
}

export function readingKey(containerId: string, measurementTimeMs: number): string {
  return `${containerId}@${measurementTimeMs}`;
}

export function checkDelivery(acknowledged: readonly ReeferReading[], delivered: readonly DeliveredRecord[]): DeliveryReport {
  const expected = new Map(acknowledged.map((r) => [readingKey(r.container_id, r.measurement_time), r]));
  const seen = new Map<string, number>();
  const altered: string[] = [];
  let unexpected = 0;
  let wrongKey = 0;
  const lastTimeByContainer = new Map<string, number>();
  const outOfOrder = new Set<string>();
  const ordered = [...delivered].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  for (const record of ordered) {
    const v = record.value;
    const key = readingKey(v.container_id, v.measurement_time);
    seen.set(key, (seen.get(key) ?? 0) + 1);
    if (record.key !== v.container_id) wrongKey += 1;
    const last = lastTimeByContainer.get(v.container_id);
    if (last !== undefined && v.measurement_time <= last) outOfOrder.add(v.container_id);
    lastTimeByContainer.set(v.container_id, v.measurement_time);
    const sent = expected.get(key);
    if (!sent) {
      unexpected += 1;
      continue;
    }
    for (const column of REFERENCE_COLUMNS) {
      if (sent[column] !== v[column]) {
        altered.push(`${key} ${column}: sent ${String(sent[column])}, got ${String(v[column])}`);
        break;
      }
    }
  }
  let duplicated = 0;
  for (const count of seen.values()) if (count > 1) duplicated += count - 1;
  let lost = 0;
  for (const key of expected.keys()) if (!seen.has(key)) lost += 1;
  return {
    acknowledged: expected.size,
    delivered: delivered.length,
    duplicated,
    lost,
    altered,
    unexpected,
    outOfOrder: [...outOfOrder],
    wrongKey,
  };
}
