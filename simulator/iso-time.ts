/**
 * Fast ISO 8601 formatting for listings (Date#toISOString costs microseconds, and a page of
 * a thousand skills needs two thousand of them). The date part is cached per day; the time
 * part is arithmetic and lookup tables. Same output as toISOString for years 1970..9999.
 */
const PAD2: string[] = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3: string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const DAY_MS = 86_400_000;
const dayCache = new Map<number, string>();

export function isoTime(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  let prefix = dayCache.get(day);
  if (prefix === undefined) {
    prefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
    if (dayCache.size > 4096) dayCache.clear();
    dayCache.set(day, prefix);
  }
  let r = ms - day * DAY_MS;
  const h = Math.floor(r / 3_600_000);
  r -= h * 3_600_000;
  const m = Math.floor(r / 60_000);
  r -= m * 60_000;
  const s = Math.floor(r / 1000);
  const milli = Math.floor(r - s * 1000);
  return prefix + PAD2[h] + ':' + PAD2[m] + ':' + PAD2[s] + '.' + PAD3[milli] + 'Z';
}
