import { createHash } from 'node:crypto';
import {
  checkTaskRequest,
  FILE_ID_PATTERN,
  GembatchError,
  jobSpecOf,
  QUEUE_NAMES,
  type CreateJobRequest,
  type ExtractJobData,
  type GenerateJobData,
  type QueueName,
  type TaskName,
} from '@gembatch/contracts';
import type { BlobStore, FileStore } from '@gembatch/storage';
import {
  BatchInputLine,
  ChatCompletionBody,
  JobsLineBody,
  type BatchEndpoint,
  type ChatContentPart,
  type ChatMessage,
} from './batch-schemas.ts';

/** The Files API as batches need it: read input files, write generated inputs and outputs, reference blobs. */
export type BatchFiles = Pick<FileStore, 'find' | 'create' | 'delete' | 'open' | 'references'>;

/** A file a request reads. */
interface BatchFileRef {
  id: string;
  sha256: string;
  bytes: number;
  filename: string;
}

/** Input of one request, before anything is stored: inline text, an uploaded file, or inline media bytes. */
type PlannedInput =
  | { type: 'text'; text: string }
  | { type: 'file'; fileId: string }
  | { type: 'media'; base64: string; filename: string };

/** What a request line turns into, with no side effects yet (so validation can run it on every line). */
export interface RequestPlan {
  input: PlannedInput;
  task: TaskName;
  options: Record<string, unknown>;
  maxTokens: number;
  temperature?: number;
  jsonSchema?: Record<string, unknown>;
  password?: string;
  priority?: number;
  metadata?: Record<string, string>;
}

/** Image types a data URL may carry (the extract step sniffs the bytes anyway). */
const IMAGE_TYPES: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/jpg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/tiff': 'tiff',
  'image/bmp': 'bmp',
};
/** Audio formats `input_audio.format` may name. */
const AUDIO_FORMATS = new Set(['wav', 'mp3', 'flac', 'ogg', 'opus', 'm4a', 'aac', 'webm']);
const DATA_URL = /^data:([a-z0-9.+/-]+)?((?:;[a-z0-9-]+=[^;,]*)*)(;base64)?,/i;
/** Base64 once whitespace is taken out (two classes that cannot overlap: linear, whatever the input). */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const WHITESPACE = /\s+/g;
/** The instruction of a chat request that has media but no words. */
const DEFAULT_MEDIA_INSTRUCTION = 'Respond to the attached input.';
/** The instruction of a text chat without a system message: answer the last user turn. */
const DEFAULT_CHAT_INSTRUCTION = "Reply to the user's last message as the assistant.";

function badRequest(message: string): GembatchError {
  return new GembatchError('GB_ERR_BAD_REQUEST', message);
}

function zodMessage(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>, root: string): string {
  return issues
    .slice(0, 5)
    .map((issue) => `${[root, ...issue.path.map(String)].join('.')}: ${issue.message}`)
    .join('; ');
}

/** Parses one JSONL line into a request line; a structural problem throws `GB_ERR_BATCH_INPUT_INVALID`. */
export function parseInputLine(text: string): BatchInputLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new GembatchError('GB_ERR_BATCH_INPUT_INVALID', 'not valid JSON');
  }
  const parsed = BatchInputLine.safeParse(value);
  if (!parsed.success) throw new GembatchError('GB_ERR_BATCH_INPUT_INVALID', zodMessage(parsed.error.issues, 'line'));
  return parsed.data;
}

/**
 * The operator's per-request caps (metadata, schema size and depth, inline text), applied to every
 * planned request as `POST /v1/jobs` applies them; throws `GB_ERR_BAD_REQUEST` naming the limit.
 */
export type RequestCheck = (plan: RequestPlan) => void;

/**
 * Plans a request (its body checked as `POST /v1/jobs` or a chat completion would be, then by
 * `check`). A bad body throws `GB_ERR_BAD_REQUEST`: that request goes to the error file, the rest of
 * the batch runs.
 */
export function planRequest(endpoint: BatchEndpoint, body: Record<string, unknown>, check?: RequestCheck): RequestPlan {
  const plan = endpoint === '/v1/jobs' ? planJobsRequest(body) : planChatRequest(body);
  check?.(plan);
  return plan;
}

function planJobsRequest(raw: Record<string, unknown>): RequestPlan {
  const parsed = JobsLineBody.safeParse(raw);
  if (!parsed.success) throw badRequest(zodMessage(parsed.error.issues, 'body'));
  const body: CreateJobRequest = parsed.data;
  const checked = checkTaskRequest(body);
  if (!checked.success) throw badRequest(zodMessage(checked.issues, 'body'));
  return {
    input:
      body.file_id !== undefined ? { type: 'file', fileId: body.file_id } : { type: 'text', text: body.text ?? '' },
    task: body.task,
    options: checked.options,
    maxTokens: checked.maxTokens,
    ...(body.json_schema ? { jsonSchema: body.json_schema } : {}),
    ...(body.password ? { password: body.password } : {}),
    ...(body.priority !== undefined ? { priority: body.priority } : {}),
    ...(body.metadata ? { metadata: body.metadata } : {}),
  };
}

function textOf(content: ChatMessage['content']): string {
  if (content === null) return '';
  if (typeof content === 'string') return content;
  return content
    .filter((part): part is Extract<ChatContentPart, { type: 'text' }> => part.type === 'text')
    .map((part) => part.text)
    .join('\n');
}

/** One image, audio or file part of a chat request as an input. */
function mediaInput(part: Exclude<ChatContentPart, { type: 'text' }>, index: number): PlannedInput {
  const where = `body.messages[${index}].content`;
  if (part.type === 'image_url') {
    const url = part.image_url.url;
    if (FILE_ID_PATTERN.test(url)) return { type: 'file', fileId: url };
    const data = DATA_URL.exec(url);
    if (!data)
      throw badRequest(
        `${where}: image_url.url must be a data: URL or a gembatch file id (gembatch never fetches remote URLs)`,
      );
    const ext = IMAGE_TYPES[(data[1] ?? '').toLowerCase()];
    if (!ext)
      throw badRequest(
        `${where}: image_url data URL type ${JSON.stringify((data[1] ?? '').slice(0, 50))} is not an image type gembatch reads`,
      );
    if (!data[3]) throw badRequest(`${where}: image_url data URL must be base64`);
    return { type: 'media', base64: checkedBase64(url.slice(data[0].length), where), filename: `image.${ext}` };
  }
  if (part.type === 'input_audio') {
    const format = part.input_audio.format.toLowerCase();
    if (!AUDIO_FORMATS.has(format))
      throw badRequest(`${where}: input_audio.format must be one of ${[...AUDIO_FORMATS].join(', ')}`);
    return { type: 'media', base64: checkedBase64(part.input_audio.data, where), filename: `audio.${format}` };
  }
  const file = part.file;
  if (file.file_id !== undefined) {
    if (!FILE_ID_PATTERN.test(file.file_id))
      throw badRequest(`${where}: file.file_id must be a file id returned by POST /v1/files`);
    return { type: 'file', fileId: file.file_id };
  }
  const raw = file.file_data as string;
  const data = DATA_URL.exec(raw);
  const base64 = data ? raw.slice(data[0].length) : raw;
  return {
    type: 'media',
    base64: checkedBase64(base64, where),
    filename: (file.filename ?? 'file').replaceAll('/', '_').slice(0, 200),
  };
}

function checkedBase64(value: string, where: string): string {
  // Why strip first: `[…\r\n]*={0,2}\s*$` matched newlines two ways and took seconds on 20,000 of them.
  if (value.length === 0 || !BASE64.test(value.replace(WHITESPACE, '')))
    throw badRequest(`${where}: media data is not valid base64`);
  return value;
}

function planChatRequest(raw: Record<string, unknown>): RequestPlan {
  const parsed = ChatCompletionBody.safeParse(raw);
  if (!parsed.success) throw badRequest(zodMessage(parsed.error.issues, 'body'));
  const body = parsed.data;
  const system: string[] = [];
  const turns: Array<{ role: 'user' | 'assistant'; text: string }> = [];
  let media: PlannedInput | undefined;
  for (const [index, message] of body.messages.entries()) {
    if (message.role === 'system' || message.role === 'developer') {
      system.push(textOf(message.content));
      continue;
    }
    if (Array.isArray(message.content)) {
      for (const part of message.content) {
        if (part.type === 'text') continue;
        if (message.role !== 'user')
          throw badRequest(`body.messages[${index}].content: only user messages may carry media`);
        if (media)
          throw badRequest(`body.messages[${index}].content: gembatch takes one image, audio or file part per request`);
        media = mediaInput(part, index);
      }
    }
    turns.push({ role: message.role, text: textOf(message.content) });
  }
  if (!turns.some((turn) => turn.role === 'user')) throw badRequest('body.messages: needs at least one user message');
  const single = turns.length === 1;
  const conversation = single
    ? (turns[0]?.text ?? '')
    : turns.map((turn) => `${turn.role === 'user' ? 'User' : 'Assistant'}: ${turn.text}`).join('\n\n');
  const systemText = system.filter((text) => text.trim() !== '').join('\n\n');
  let input: PlannedInput;
  let instruction: string;
  if (media) {
    input = media;
    instruction =
      [systemText, conversation].filter((text) => text.trim() !== '').join('\n\n') || DEFAULT_MEDIA_INSTRUCTION;
  } else {
    if (conversation.trim() === '') throw badRequest('body.messages: the user message has no text and no media');
    input = { type: 'text', text: conversation };
    instruction = systemText || DEFAULT_CHAT_INSTRUCTION;
  }
  // A chat request is the `prompt` task, checked as a `POST /v1/jobs` body with that instruction would be.
  const checked = checkTaskRequest({
    task: 'prompt',
    options: { instruction: instruction.slice(0, 20_000) },
    max_tokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
  });
  if (!checked.success) throw badRequest(zodMessage(checked.issues, 'body.messages'));
  const format = body.response_format;
  const jsonSchema =
    format?.type === 'json_schema'
      ? format.json_schema.schema
      : format?.type === 'json_object'
        ? { type: 'object' }
        : undefined;
  return {
    input,
    task: 'prompt',
    options: checked.options,
    maxTokens: checked.maxTokens,
    ...(body.temperature !== undefined && body.temperature !== null ? { temperature: body.temperature } : {}),
    ...(jsonSchema ? { jsonSchema } : {}),
  };
}

/** A request ready for the queues: its job, the queue it starts in, and its dedup key. */
export interface PreparedJob {
  data: ExtractJobData | GenerateJobData;
  queue: QueueName;
  priority?: number;
}

export interface PrepareContext {
  tenant: string;
  batchId: string;
  blobStore: BlobStore;
  files: BatchFiles;
  /** How long the request's job is kept (seconds): its inline blobs are referenced that long. */
  retentionSeconds: number;
}

const sha256 = (value: string | Buffer) => createHash('sha256').update(value).digest('hex');

/**
 * Turns a plan into a job: stores inline text and media in the blob store, looks up referenced
 * files, and derives the job id from the batch id and the request's identity (content hash, task,
 * options, schema, limits), so identical requests of one batch share one job and a re-fed request
 * maps to the job it had. A file that does not exist → `GB_ERR_FILE_NOT_FOUND`.
 */
export async function prepareJob(context: PrepareContext, plan: RequestPlan): Promise<PreparedJob> {
  let file: BatchFileRef | undefined;
  let textSha: string | undefined;
  let inline: Buffer | undefined;
  if (plan.input.type === 'file') {
    file = await context.files.find(context.tenant, plan.input.fileId);
    if (!file) throw new GembatchError('GB_ERR_FILE_NOT_FOUND', `no file ${plan.input.fileId}`);
  } else {
    inline =
      plan.input.type === 'media' ? Buffer.from(plan.input.base64, 'base64') : Buffer.from(plan.input.text, 'utf8');
    if (inline.length === 0) throw new GembatchError('GB_ERR_EMPTY_INPUT', 'the inline media decodes to zero bytes');
  }
  const contentSha = file?.sha256 ?? sha256(inline as Buffer);
  const identity = JSON.stringify([
    contentSha,
    plan.task,
    plan.options,
    plan.jsonSchema ?? null,
    plan.maxTokens,
    plan.temperature ?? null,
    plan.password ?? null,
    plan.metadata ?? null,
  ]);
  const jobId = `job_${sha256(`${context.batchId}\n${sha256(identity)}`).slice(0, 32)}`;
  if (inline) {
    // The job references its inline bytes (as POST /v1/jobs does), so the blob lives as long as the job.
    const references = context.files.references;
    const checkAt = Date.now() + context.retentionSeconds * 1000;
    const stored = await context.blobStore.put(inline, {
      beforeCommit: (hash) => references.acquireForJob(hash, jobId, checkAt),
    });
    if (plan.input.type === 'media') {
      // Inline media has no upload record; a content-derived id names it in the job.
      file = {
        id: `file_${stored.sha256.slice(0, 32)}`,
        sha256: stored.sha256,
        bytes: stored.bytes,
        filename: plan.input.filename,
      };
    } else textSha = stored.sha256;
  }
  const spec = jobSpecOf({
    job_id: jobId,
    tenant: context.tenant,
    task: plan.task,
    options: plan.options,
    max_tokens: plan.maxTokens,
    temperature: plan.temperature,
    json_schema: plan.jsonSchema,
    metadata: plan.metadata,
    submitted_at: Date.now(),
  });
  const priority = plan.priority !== undefined ? { priority: plan.priority } : {};
  if (file) {
    const data: ExtractJobData = {
      ...spec,
      file: { id: file.id, sha256: file.sha256, bytes: file.bytes, filename: file.filename },
      ...(plan.password ? { password: plan.password } : {}),
      ...priority,
    };
    return { data, queue: QUEUE_NAMES.extract, ...priority };
  }
  const data: GenerateJobData = { ...spec, input: { type: 'text', sha256: textSha as string } };
  return { data, queue: QUEUE_NAMES.generate, ...priority };
}
