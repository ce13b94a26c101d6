/**
 * Which lane a reading travels in. Alarms (door open, power off, a temperature excursion, a
 * maintenance flag) are what an operator cannot afford to lose; under pressure the outbox sheds
 * routine readings first and alarms last.
 */
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import type { Lane } from '../outbox/sqlite-outbox.js';

export interface LaneRules {
  /** A reading this far from its setpoint, in °C, is an excursion. */
  temperatureExcursionC: number;
}

/** Why a reading is an alarm; the dashboard shows these, the outbox only needs to know there is one. */
export type AlarmKind = 'door-open' | 'power-off' | 'temperature-excursion' | 'maintenance';

export function alarmsOf(r: ReeferReading, rules: LaneRules): AlarmKind[] {
  const alarms: AlarmKind[] = [];
  if (r.time_door_open !== null && r.time_door_open > 0) alarms.push('door-open');
  // The reference's power-off failure zeroes kilowatts and stops the fans; either one is enough.
  if ((r.kilowatts !== null && r.kilowatts <= 0) || r.fan_1 === false || r.fan_2 === false || r.fan_3 === false) alarms.push('power-off');
  if (r.target_temperature !== null && Math.abs(r.temperature - r.target_temperature) > rules.temperatureExcursionC) alarms.push('temperature-excursion');
  if (r.maintenance_required === true) alarms.push('maintenance');
  return alarms;
}

export function laneOf(r: ReeferReading, rules: LaneRules): Lane {
  return alarmsOf(r, rules).length > 0 ? 'alarm' : 'routine';
}
