import { GembatchError } from '@gembatch/contracts';
import { runProcess } from '../util/run-process.ts';
import { findSystemTool } from '../util/system-tools.ts';

/** Options of `ocrImage`. */
export interface OcrOptions {
  /** Kill tesseract after this many milliseconds (`GB_ERR_TIMEOUT`). */
  timeoutMs: number;
  /** Tesseract language(s), e.g. `eng` or `eng+deu`. Defaults to `eng`. */
  language?: string;
  /** Defaults to none. */
  signal?: AbortSignal;
}

/** Whether the Debian `tesseract` binary is installed. */
export function tesseractAvailable(): boolean {
  return findSystemTool('tesseract') !== null;
}

/**
 * Recognises the text in one page image (PNG bytes) with the system tesseract, fed on stdin.
 * `OMP_THREAD_LIMIT=1`: tesseract's OpenMP threads make a page 2.5× slower on small machines;
 * parallelism belongs across pages. Fails with `GB_ERR_OCR_FAILED` when tesseract does.
 */
export async function ocrImage(png: Buffer, options: OcrOptions): Promise<string> {
  const tesseract = findSystemTool('tesseract');
  if (!tesseract) throw new GembatchError('GB_ERR_OCR_FAILED', 'tesseract is not installed on this node');
  const result = await runProcess(tesseract, ['stdin', 'stdout', '-l', options.language ?? 'eng', '--psm', '3'], {
    timeoutMs: options.timeoutMs,
    stdin: png,
    // Why 16 MiB: a dense page is tens of kilobytes of text.
    maxStdoutBytes: 16 * 1024 * 1024,
    env: { OMP_THREAD_LIMIT: '1' },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (result.exitCode !== 0 || result.overflowed) {
    throw new GembatchError('GB_ERR_OCR_FAILED', `tesseract failed on a page (exit code ${String(result.exitCode)})`);
  }
  return result.stdout.toString('utf8');
}
