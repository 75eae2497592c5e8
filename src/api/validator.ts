/**
 * Request validation with TypeBox, compiled once per schema. It behaves like
 * @fastify/type-provider-typebox's TypeBoxValidatorCompiler (querystring, params and headers are
 * converted to the schema's types, a body is checked as it is) with one difference in cost:
 * Value.Convert walks the schema on every call, so it runs only when the raw value does not
 * pass the compiled check as it is. Converting a value that already passes changes nothing, so
 * the answer is the same; the usual read (`/skills/:id`, `?query=...&category=...`, all
 * strings) then costs one compiled check instead of a conversion and a check.
 *
 * Every part (params, querystring, body, headers) is also refused when a string in it, or an
 * object key, holds U+0000: PostgreSQL text and jsonb cannot store it (SQLSTATE 22021/22P05),
 * so it would fail as a store error (500) there and be accepted on SQLite. One check here makes
 * both stores answer the same 400 naming the field.
 */
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';

const NUL = '\u0000';
export const NUL_MESSAGE = 'must not contain the NUL character (U+0000)';

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
 * may nest deeper than the call stack allows (the routes cap depth themselves, after this).
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

/** A TypeBox-shaped error: Fastify formats it as `<part><instancePath> <message>`. */
function nulError(instancePath: string): Error {
  return [
    { keyword: 'nul', schemaPath: '#', instancePath, params: {}, message: NUL_MESSAGE },
  ] as unknown as Error;
}

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema);
  const convert = httpPart !== 'body';
  const accept = (value: unknown) => {
    const at = nulPath(value);
    return at === null ? { value } : { error: nulError(at) };
  };
  return (value: unknown) => {
    if (check.Check(value)) return accept(value);
    if (convert) {
      const converted = Value.Convert(schema, value);
      if (check.Check(converted)) return accept(converted);
      return { error: check.Errors(converted) as unknown as Error };
    }
    return { error: check.Errors(value) as unknown as Error };
  };
};
