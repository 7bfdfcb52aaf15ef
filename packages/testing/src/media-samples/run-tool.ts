import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { findOnPath } from '@gembatch/config';

/** Runs a system tool (qpdf, ffmpeg, espeak-ng) to completion; rejects with its stderr on a non-zero exit. */
export const runTool = promisify(execFile);

/** Whether an executable is on PATH (qpdf, ffmpeg, espeak-ng, tesseract, pdftotext). */
export function systemToolAvailable(name: string): boolean {
  return findOnPath(name) !== null;
}
