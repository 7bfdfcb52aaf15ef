import { PassThrough } from 'node:stream';
import { Writable } from 'node:stream';
import { createLogger } from '@gembatch/telemetry';
import { describe, expect, it } from 'vitest';
import { NativeOutputSink } from './native-output.ts';

function captureLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: createLogger({ service: 'test', level: 'debug', destination }), lines };
}

// Lines as a CPU run of the tiny Gemma 4 printed them (the add_text block is mtmd echoing the prompt).
const SAMPLE = [
  'llama_context: n_ctx         = 2048',
  '[INFO] loadModel:473 Using n_parallel: 4 (enables up to 4 parallel slots)',
  'add_text: <start_of_turn>user',
  'Patient: Jane Roe, born 1970',
  'load_hparams: projector:          gemma4uv',
  '[INFO] tokenizeWithMedia:384 [DEBUG] Chunk 0: type=TEXT, n_tokens=40',
  'root ::= "<start_of_turn>model\\n" space',
  '[INFO] processMedia:442 [DEBUG] Processing message with role=user, content=<start_of_turn>system',
  'decoding image batch 1/1, n_tokens_batch = 266',
  'llama-context.cpp:1784: GGML_ASSERT((cparams.causal_attn || cparams.n_ubatch >= n_tokens_all)) failed',
];

describe('NativeOutputSink', () => {
  it('drops everything by default but keeps crash lines', () => {
    const { logger, lines } = captureLogger();
    const sink = new NativeOutputSink(logger);
    for (const line of SAMPLE) sink.push(line, 'stderr');
    expect(lines).toEqual([]);
    expect(sink.crashLines()).toEqual([SAMPLE[9]]);
  });

  it('forwards only structural lines at debug, never prompt echoes or grammars', () => {
    const { logger, lines } = captureLogger();
    const sink = new NativeOutputSink(logger, true);
    for (const line of SAMPLE) sink.push(line, 'stdout');
    const forwarded = lines.map((entry) => entry.line);
    expect(forwarded).toEqual([SAMPLE[0], SAMPLE[1], SAMPLE[4], SAMPLE[5], SAMPLE[8], SAMPLE[9]]);
    expect(lines.every((entry) => entry.level === 'debug' && entry.msg === 'llama.cpp')).toBe(true);
    expect(JSON.stringify(lines)).not.toContain('Jane Roe');
  });

  it('splits streamed chunks into lines', async () => {
    const { logger, lines } = captureLogger();
    const sink = new NativeOutputSink(logger, true);
    const stream = new PassThrough();
    sink.attach(stream, 'stderr');
    const ended = new Promise((resolve) => stream.on('end', resolve));
    stream.write('llama_context: n_b');
    stream.write('atch = 512\nllama_context: n_ubatch = 512\nllama_context: tail');
    stream.end();
    await ended;
    expect(lines.map((entry) => entry.line)).toEqual([
      'llama_context: n_batch = 512',
      'llama_context: n_ubatch = 512',
      'llama_context: tail',
    ]);
  });
});
