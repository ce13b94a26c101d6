/**
 * Record values that are UTF-8 JSON objects (alerts, commands, actions, detector state): parsed
 * without ever throwing, so a foreign or corrupt value is a reason, not an exception.
 */

/** The value's JSON object, or why it is not one. */
export function parseJsonObject(value: Buffer | null): Record<string, unknown> | string {
  if (!value || value.length === 0) return 'empty value';
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch {
    return 'value is not JSON';
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'value is not a JSON object';
  return parsed as Record<string, unknown>;
}
