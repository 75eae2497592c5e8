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
import { nulPath } from '../core/nul.js';

export const NUL_MESSAGE = 'must not contain the NUL character (U+0000)';

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
