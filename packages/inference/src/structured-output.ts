import { GembatchError } from '@gembatch/contracts';
import type { Engine, GenerateRequest, GenerateResult } from './engine.ts';
import { compileJsonSchema } from './json-schema-validator.ts';

export interface GenerateStructuredOptions {
  /** The JSON Schema the output must satisfy. */
  schema: Record<string, unknown>;
  /** Extra attempts after a failed validation, each with a repair prompt. Defaults to `2`. */
  maxRepairs?: number;
  /** Called with each attempt's result (usage accounting). Defaults to none. */
  onAttempt?: (result: GenerateResult, attempt: number) => void;
}

export interface StructuredResult {
  value: unknown;
  /** The attempt that produced `value`. */
  result: GenerateResult;
  attempts: number;
}

const DEFAULT_MAX_REPAIRS = 2;
/** A failed answer is quoted back to the model up to this many characters. */
const REPAIR_QUOTE_CHARS = 2_000;

/**
 * Parses a model's answer as JSON: the whole text, else the text inside a ```json fence, else the
 * outermost object or array. The error says where parsing failed, never what the text was. A
 * number too large for a double (JSON.parse makes it `Infinity`, which ajv's `integer` accepts and
 * `JSON.stringify` turns into `null`) makes the answer invalid: the grammar does not bound digits.
 */
export function parseJsonAnswer(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const candidates = [text.trim()];
  const fenced = /```(?:json)?\s*([\s\S]*?)```/i.exec(text);
  if (fenced?.[1]) candidates.push(fenced[1].trim());
  const first = text.search(/[[{]/);
  const last = Math.max(text.lastIndexOf('}'), text.lastIndexOf(']'));
  if (first >= 0 && last > first) candidates.push(text.slice(first, last + 1));
  for (const candidate of candidates) {
    let value: unknown;
    try {
      value = JSON.parse(candidate);
    } catch {
      continue; // Try the next reading.
    }
    return hasNonFiniteNumber(value)
      ? { ok: false, error: 'the answer has a number too large to represent (more than about 308 digits)' }
      : { ok: true, value };
  }
  return {
    ok: false,
    error: text.trim() === '' ? 'the answer is empty' : `the answer is not valid JSON (${text.length} characters)`,
  };
}

/** Walks with a stack, not recursion: an answer nested thousands deep must not overflow the call stack. */
function hasNonFiniteNumber(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'number' && !Number.isFinite(value)) return true;
    if (value !== null && typeof value === 'object') for (const child of Object.values(value)) stack.push(child);
  }
  return false;
}

/**
 * Generates under the schema's grammar, then validates with a real JSON Schema validator (ajv).
 * On failure it asks again with a repair prompt quoting the answer and the validator's message,
 * up to `maxRepairs` times, then throws `GB_ERR_SCHEMA_VALIDATION` carrying that message.
 */
export async function generateStructured(
  engine: Engine,
  request: GenerateRequest,
  options: GenerateStructuredOptions,
): Promise<StructuredResult> {
  const { validate, errorsText } = compileJsonSchema(options.schema);
  const maxRepairs = Math.max(0, Math.floor(options.maxRepairs ?? DEFAULT_MAX_REPAIRS));
  let current: GenerateRequest = { ...request, jsonSchema: request.jsonSchema ?? options.schema };
  let problem = '';
  for (let attempt = 1; attempt <= maxRepairs + 1; attempt++) {
    let result: GenerateResult;
    try {
      result = await engine.generate(current);
    } catch (error) {
      // A repair prompt that no longer fits the context ends the repairs, not the job's story.
      if (attempt > 1 && error instanceof GembatchError && error.code === 'GB_ERR_CONTEXT_OVERFLOW') break;
      throw error;
    }
    options.onAttempt?.(result, attempt);
    const parsed = parseJsonAnswer(result.text);
    if (parsed.ok && validate(parsed.value)) return { value: parsed.value, result, attempts: attempt };
    problem = parsed.ok ? errorsText(validate.errors) : parsed.error;
    if (result.finishReason === 'length') problem += ` (the answer was cut at ${result.generatedTokens} tokens)`;
    current = repairRequest(request, options.schema, result.text, problem);
  }
  throw new GembatchError(
    'GB_ERR_SCHEMA_VALIDATION',
    `the output did not satisfy the JSON Schema after ${maxRepairs + 1} attempt(s): ${problem}`,
    { details: { attempts: maxRepairs + 1 } },
  );
}

function repairRequest(
  request: GenerateRequest,
  schema: Record<string, unknown>,
  answer: string,
  problem: string,
): GenerateRequest {
  const quoted = answer.length > REPAIR_QUOTE_CHARS ? `${answer.slice(0, REPAIR_QUOTE_CHARS)}…` : answer;
  return {
    ...request,
    jsonSchema: request.jsonSchema ?? schema,
    prompt: {
      ...request.prompt,
      instruction: `${request.prompt.instruction}\n\nA previous answer was rejected.\nAnswer: ${quoted}\nProblem: ${problem}\nAnswer again with JSON only, satisfying this JSON Schema: ${JSON.stringify(schema)}`,
    },
  };
}
