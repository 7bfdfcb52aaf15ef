import type { FastifySchema, FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify';
import { z } from 'zod';
import { GembatchError } from '@gembatch/contracts';

/**
 * Route schemas are zod schemas: the validator runs them (so messages name the field, e.g.
 * `file_id: give exactly one of file_id or text`), and OpenAPI gets their JSON Schema. A plain
 * JSON Schema object in a route (the multipart upload) only documents; it validates nothing.
 */

function isZodSchema(value: unknown): value is z.ZodType {
  return value instanceof z.ZodType;
}

/** `path.to.field: message; other: message`, the form every 400 uses. */
function describeIssues(issues: readonly z.core.$ZodIssue[], base: readonly PropertyKey[] = []): string {
  return issues
    .map((issue) => `${[...base, ...issue.path].map(String).join('.') || 'body'}: ${issue.message}`)
    .join('; ');
}

/** Validates with the route's zod schema; failures become `GB_ERR_BAD_REQUEST` naming the field. */
export const zodValidatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  if (!isZodSchema(schema)) return (data: unknown) => ({ value: data });
  return (data: unknown) => {
    const parsed = schema.safeParse(data);
    if (parsed.success) return { value: parsed.data };
    const base = httpPart === 'querystring' ? ['query'] : httpPart === 'params' ? ['path'] : [];
    return { error: new GembatchError('GB_ERR_BAD_REQUEST', describeIssues(parsed.error.issues, base)) };
  };
};

/** Responses are plain JSON; response schemas exist for the OpenAPI document only. */
export const jsonSerializerCompiler: FastifySerializerCompiler<unknown> = () => (data: unknown) => JSON.stringify(data);

function toJsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _drop, ...json } = z.toJSONSchema(schema, {
    target: 'openapi-3.0',
    io,
    unrepresentable: 'any',
  }) as Record<string, unknown>;
  return json;
}

/** `@fastify/swagger` transform: zod schemas in a route become JSON Schema in the document. */
export function zodSchemasToOpenApi({ schema, url }: { schema: FastifySchema; url: string }): {
  schema: FastifySchema;
  url: string;
} {
  // The operator board's internal routes are not part of the public API; admin JSON routes tagged `admin` are.
  if (url.startsWith('/admin/') && !schema?.tags?.includes('admin')) return { schema: { ...schema, hide: true }, url };
  if (!schema) return { schema, url };
  const converted: Record<string, unknown> = { ...schema };
  for (const part of ['body', 'querystring', 'params', 'headers'] as const) {
    const value = converted[part];
    if (isZodSchema(value)) converted[part] = toJsonSchema(value, 'input');
  }
  if (schema.response && typeof schema.response === 'object') {
    converted.response = Object.fromEntries(
      Object.entries(schema.response as Record<string, unknown>).map(([status, value]) => [
        status,
        isZodSchema(value) ? toJsonSchema(value, 'output') : value,
      ]),
    );
  }
  return { schema: converted, url };
}
