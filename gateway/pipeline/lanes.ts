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

export function laneOf(r: ReeferReading, rules: LaneRules): Lane {
  if (r.time_door_open !== null && r.time_door_open > 0) return 'alarm';
  if (r.kilowatts !== null && r.kilowatts <= 0) return 'alarm';
  if (r.fan_1 === false || r.fan_2 === false || r.fan_3 === false) return 'alarm';
  if (r.maintenance_required === true) return 'alarm';
  if (r.target_temperature !== null && Math.abs(r.temperature - r.target_temperature) > rules.temperatureExcursionC) return 'alarm';
  return 'routine';
}
