/**
 * The engine's content hash of a skill: byte-for-byte the same as skillContentHash
 * (src/remote/contract.ts, the one the simulator and the digest use), about twice as fast.
 *
 * Hashing is the largest CPU cost of a full sync after JSON parsing. skillContentHash builds
 * canonical JSON by hand, key by key; here objects are re-keyed in sorted order (reusing the
 * ones already sorted) and V8's native JSON.stringify writes the text, which is the same text
 * because JSON.stringify emits own keys in Object.keys order. Anything that is not plain JSON
 * data (a Date, a class instance) or has integer-like keys takes the reference path.
 */
import { createHash } from 'node:crypto';
import { skillContentHash, type Skill } from '../remote/contract.js';

const OMIT: ReadonlySet<string> = new Set(['content_hash', 'created_at', 'updated_at', 'deleted_at']);

class NotPlain extends Error {}
const NOT_PLAIN = new NotPlain();

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Same value with every object's keys in code-unit order; unchanged parts are reused. */
function sorted(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const s = sorted(v);
      if (s !== v) {
        out ??= value.slice();
        out[i] = s;
      }
    }
    return out ?? value;
  }
  if (!isPlainObject(value)) throw NOT_PLAIN;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  // V8 enumerates integer-like keys first whatever their code-unit order: take the reference
  // path for objects that have any (rare in skills).
  for (const k of keys) {
    const c = k.charCodeAt(0);
    if (c >= 48 && c <= 57) throw NOT_PLAIN;
  }
  let inOrder = true;
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) >= (keys[i] as string)) {
      inOrder = false;
      break;
    }
  }
  let changed = !inOrder;
  const values: unknown[] = new Array<unknown>(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const v = obj[keys[i] as string];
    const s = sorted(v);
    values[i] = s;
    if (s !== v) changed = true;
  }
  if (!changed) return value;
  const order = inOrder ? keys.map((_, i) => i) : keys.map((_, i) => i).sort((a, b) => cmp(keys[a], keys[b]));
  const out: Record<string, unknown> = {};
  for (const i of order) out[keys[i] as string] = values[i];
  return out;
}

function cmp(a: string | undefined, b: string | undefined): number {
  return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
}

export function hashSkill(skill: Skill): string {
  try {
    if (!isPlainObject(skill)) return skillContentHash(skill);
    const keys = Object.keys(skill).filter((k) => !OMIT.has(k));
    for (const k of keys) {
      const c = k.charCodeAt(0);
      if (c >= 48 && c <= 57) throw NOT_PLAIN;
    }
    keys.sort();
    const top: Record<string, unknown> = {};
    for (const k of keys) top[k] = sorted(skill[k]);
    return createHash('sha256').update(JSON.stringify(top)).digest('hex');
  } catch (err) {
    if (err === NOT_PLAIN) return skillContentHash(skill);
    throw err;
  }
}
