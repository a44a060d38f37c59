/**
 * Reading FHIR repeating elements defensively: EHR payloads can carry a single object, null
 * entries or a scalar where an array belongs, and a malformed element is no data, not a crash.
 */
export function objectsOf<T>(value: T[] | T | null | undefined): T[] {
  const list: unknown[] = Array.isArray(value) ? value : value === null || value === undefined ? [] : [value];
  return list.filter((v): v is T => typeof v === 'object' && v !== null);
}
