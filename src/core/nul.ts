/**
 * Where a JSON value holds U+0000 (in a string or an object key): PostgreSQL text and jsonb
 * cannot store it. Used by the request validator (a 400 naming the field) and by the
 * PostgreSQL store (a record quarantined with the path as its reason).
 */
const NUL = '\u0000';

/** A JSON pointer segment, readable when the key itself holds a NUL. */
function segment(key: string): string {
  const shown = key.length > 100 ? `${key.slice(0, 100)}…` : key;
  return shown.replaceAll('~', '~0').replaceAll('/', '~1').replaceAll(NUL, '\\u0000');
}

interface Visit {
  value: unknown;
  parent: Visit | null;
  key: string;
}

function pointer(visit: Visit | null, last?: string): string {
  const parts: string[] = last === undefined ? [] : [segment(last)];
  for (let v = visit; v !== null && v.parent !== null; v = v.parent) parts.push(segment(v.key));
  return parts.length === 0 ? '' : `/${parts.reverse().join('/')}`;
}

/**
 * The path (JSON pointer) of the first string or key holding U+0000, or null. Iterative: a body
 * may nest deeper than the call stack allows (a request or a remote record may be hostile).
 * Paths are built only for a hit, so the usual request pays one walk and no string work.
 */
export function nulPath(value: unknown): string | null {
  const stack: Visit[] = [{ value, parent: null, key: '' }];
  for (let visit = stack.pop(); visit !== undefined; visit = stack.pop()) {
    const v = visit.value;
    if (typeof v === 'string') {
      if (v.includes(NUL)) return pointer(visit);
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], parent: visit, key: String(i) });
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      for (const key of keys) if (key.includes(NUL)) return pointer(visit, key);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        stack.push({ value: (v as Record<string, unknown>)[key], parent: visit, key });
      }
    }
  }
  return null;
}
