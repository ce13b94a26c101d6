/**
 * The reference architecture's anomaly rules for reefers, pure: what the analytics flag, and what
 * the simulator's failure modes are scored against.
 *
 * - CO2 above 10.8 % (vaccines: above 12 %) or below 0: a CO2 sensor anomaly.
 * - O2 below 12 %: an O2 sensor anomaly.
 * - |temperature − setpoint| above 20 °C: a temperature anomaly.
 * - kilowatts at or below 0 on two consecutive readings: power off.
 * - 10 consecutive readings at or above the product's cold-chain threshold: a cold-chain violation.
 */
import type { ReeferReading } from '../schemas/reefer-reading.js';

export type AnomalyKind = 'co2' | 'o2' | 'temperature' | 'power-off' | 'cold-chain';

/** Vaccines are the products kept far below freezing. */
const VACCINE_MAX_TARGET_C = -20;

/** Consecutive readings above threshold that break the cold chain. */
export const COLD_CHAIN_READINGS = 10;

/**
 * The cold-chain threshold: −15 °C for vaccines (the reference's figure); for fresh produce the
 * reference gives none, so 4 °C above the setpoint is used.
 */
export function coldChainThresholdC(targetC: number): number {
  return targetC <= VACCINE_MAX_TARGET_C ? -15 : targetC + 4;
}

export interface ContainerRuleState {
  lastKilowatts: number | null;
  coldRun: number;
}

export function initialRuleState(): ContainerRuleState {
  return { lastKilowatts: null, coldRun: 0 };
}

/** Evaluates one reading against the rules, given its container's state; returns the new state too. */
export function evaluateReading(r: ReeferReading, state: ContainerRuleState): { anomalies: AnomalyKind[]; state: ContainerRuleState } {
  const anomalies: AnomalyKind[] = [];
  const target = r.target_temperature;
  const vaccine = target !== null && target <= VACCINE_MAX_TARGET_C;
  if (r.carbon_dioxide_level !== null && (r.carbon_dioxide_level > (vaccine ? 12 : 10.8) || r.carbon_dioxide_level < 0)) anomalies.push('co2');
  if (r.oxygen_level !== null && r.oxygen_level < 12) anomalies.push('o2');
  if (target !== null && Math.abs(r.temperature - target) > 20) anomalies.push('temperature');
  if (r.kilowatts !== null && r.kilowatts <= 0 && state.lastKilowatts !== null && state.lastKilowatts <= 0) anomalies.push('power-off');
  let coldRun = state.coldRun;
  if (target !== null) {
    coldRun = r.temperature >= coldChainThresholdC(target) ? coldRun + 1 : 0;
    if (coldRun === COLD_CHAIN_READINGS) anomalies.push('cold-chain');
  }
  return { anomalies, state: { lastKilowatts: r.kilowatts, coldRun } };
}
