/**
 * Calendar-day arithmetic on FHIR date strings. The engine reasons in whole days (YYYY-MM-DD,
 * UTC), which is what coverage criteria are written in; times of day never matter here.
 */

const DAY_MS = 86_400_000;
const DATE_PREFIX = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/;

/** The calendar day of a FHIR date/dateTime/instant; partial dates take their first day. */
export function toDay(value: string | undefined): string | undefined {
  if (typeof value !== 'string' || !value) return undefined;
  const m = DATE_PREFIX.exec(value);
  if (!m) return undefined;
  const day = `${m[1]}-${m[2] ?? '01'}-${m[3] ?? '01'}`;
  return Number.isNaN(Date.parse(`${day}T00:00:00Z`)) ? undefined : day;
}

export function dayFromDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function ms(day: string): number {
  return Date.parse(`${day}T00:00:00Z`);
}

export function addDays(day: string, days: number): string {
  return dayFromDate(new Date(ms(day) + days * DAY_MS));
}

/** Whole days from `from` to `to` (negative when `to` is earlier). */
export function daysBetween(from: string, to: string): number {
  return Math.round((ms(to) - ms(from)) / DAY_MS);
}

export function addMonths(day: string, months: number): string {
  const d = new Date(ms(day));
  const target = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(d.getUTCDate(), lastDay));
  return dayFromDate(target);
}

export function addYears(day: string, years: number): string {
  return addMonths(day, years * 12);
}

/** Completed years between birth and a day (the usual legal/clinical age). */
export function ageInYears(birthDate: string, at: string): number {
  const [by, bm, bd] = birthDate.split('-').map(Number) as [number, number, number];
  const [ay, am, ad] = at.split('-').map(Number) as [number, number, number];
  let age = ay - by;
  if (am < bm || (am === bm && ad < bd)) age -= 1;
  return age;
}

/** Age for display: "10 months", "3 years", "12 days". */
export function describeAge(birthDate: string, at: string): string {
  const years = ageInYears(birthDate, at);
  if (years >= 2) return `${years} years`;
  const [by, bm, bd] = birthDate.split('-').map(Number) as [number, number, number];
  const [ay, am, ad] = at.split('-').map(Number) as [number, number, number];
  let months = (ay - by) * 12 + (am - bm);
  if (ad < bd) months -= 1;
  if (months >= 1) return `${months} month${months === 1 ? '' : 's'}`;
  const days = daysBetween(birthDate, at);
  return `${days} day${days === 1 ? '' : 's'}`;
}

export function inRange(day: string, range: { start?: string; end?: string } | undefined): boolean {
  if (!range) return true;
  if (range.start && day < range.start) return false;
  if (range.end && day > range.end) return false;
  return true;
}
