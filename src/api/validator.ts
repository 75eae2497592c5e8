/**
 * Request validation with TypeBox, compiled once per schema. It behaves like
 * @fastify/type-provider-typebox's TypeBoxValidatorCompiler (querystring, params and headers are
 * converted to the schema's types, a body is checked as it is) with one difference in cost:
 * Value.Convert walks the schema on every call, so it runs only when the raw value does not
 * pass the compiled check as it is. Converting a value that already passes changes nothing, so
 * the answer is the same; the usual read (`/skills/:id`, `?query=...&category=...`, all
 * strings) then costs one compiled check instead of a conversion and a check.
 */
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema);
  const convert = httpPart !== 'body';
  return (value: unknown) => {
    if (check.Check(value)) return { value };
    if (convert) {
      const converted = Value.Convert(schema, value);
      if (check.Check(converted)) return { value: converted };
      return { error: check.Errors(converted) as unknown as Error };
    }
    return { error: check.Errors(value) as unknown as Error };
  };
};
