/**
 * Compatibility between two versions of a schema, in the terms a schema registry uses:
 * backward (the new version reads what the previous one wrote, so consumers can upgrade first),
 * forward (the previous version reads what the new one writes, so producers can upgrade first) and
 * full (both). The Avro library's schema resolution decides; this names the direction and the field.
 */
import { resolutionProblem } from './avro.js';

export type CompatibilityLevel = 'backward' | 'forward' | 'full';

export interface CompatibilityReport {
  /** Why the new version cannot read data the previous one wrote; null when it can. */
  readonly backward: string | null;
  /** Why the previous version cannot read data the new one writes; null when it can. */
  readonly forward: string | null;
  /** The strongest level that holds. */
  readonly level: CompatibilityLevel | 'none';
}

/** Compares two parsed JSON Avro schemas. Throws only if either is not a valid schema. */
export function checkCompatibility(previous: unknown, next: unknown): CompatibilityReport {
  const backward = resolutionProblem(next, previous);
  const forward = resolutionProblem(previous, next);
  const level = backward === null ? (forward === null ? 'full' : 'backward') : forward === null ? 'forward' : 'none';
  return { backward, forward, level };
}

export class SchemaCompatibilityError extends Error {
  readonly code = 'REEFER_SCHEMA_INCOMPATIBLE';
  /** The same pair of schemas never becomes compatible by trying again. */
  readonly retriable = false;
  readonly report: CompatibilityReport;
  readonly required: CompatibilityLevel;
  constructor(message: string, required: CompatibilityLevel, report: CompatibilityReport) {
    super(message);
    this.name = 'SchemaCompatibilityError';
    this.required = required;
    this.report = report;
  }
}

/**
 * Throws a SchemaCompatibilityError unless `next` is compatible with `previous` at the required
 * level; the message names both versions, each failing direction and the field at fault.
 */
export function assertCompatible(
  previous: unknown,
  next: unknown,
  required: CompatibilityLevel = 'full',
  names: { previous: string; next: string } = { previous: 'the previous schema', next: 'the new schema' },
): CompatibilityReport {
  const report = checkCompatibility(previous, next);
  const failures: string[] = [];
  if (required !== 'forward' && report.backward !== null) {
    failures.push(`backward: ${names.next} cannot read data written with ${names.previous}: ${report.backward}`);
  }
  if (required !== 'backward' && report.forward !== null) {
    failures.push(`forward: ${names.previous} cannot read data written with ${names.next}: ${report.forward}`);
  }
  if (failures.length > 0) {
    throw new SchemaCompatibilityError(`${names.next} is not ${required} compatible with ${names.previous}; ${failures.join('; ')}`, required, report);
  }
  return report;
}
