import { createHash } from 'node:crypto';

/**
 * Canonical JSON: object keys sorted by code unit, no whitespace, arrays in order. Two values
 * that are equal as JSON data give the same string whatever order their keys arrived in, which
 * is what content hashes and catalog digests need. `undefined` members are dropped, as
 * JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    // Non-finite numbers become null, as in JSON.stringify.
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const v: unknown = value[i];
      out += v === undefined ? 'null' : canonicalJson(v);
    }
    return out + ']';
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const v = obj[key];
    if (v === undefined || typeof v === 'function') continue;
    if (!first) out += ',';
    first = false;
    out += JSON.stringify(key) + ':' + canonicalJson(v);
  }
  return out + '}';
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Hash of a value's canonical JSON, leaving out the named top-level keys. */
export function canonicalHash(value: Record<string, unknown>, omit: ReadonlySet<string>): string {
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) if (!omit.has(key)) copy[key] = value[key];
  return sha256Hex(canonicalJson(copy));
}
