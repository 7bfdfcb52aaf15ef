import { GembatchError } from '@gembatch/contracts';
import { describe, expect, it } from 'vitest';
import { classifyPdfOpenError } from './classify-pdf-error.ts';
import { PdfJsError } from './pdf-worker-client.ts';

describe('classifyPdfOpenError', () => {
  it('tells a missing password from a wrong one', () => {
    expect(
      classifyPdfOpenError(new PdfJsError({ name: 'PasswordException', message: 'No password given', code: 1 }), false)
        .code,
    ).toBe('GB_ERR_PDF_PASSWORD_REQUIRED');
    expect(
      classifyPdfOpenError(new PdfJsError({ name: 'PasswordException', message: 'Incorrect Password', code: 2 }), true)
        .code,
    ).toBe('GB_ERR_PDF_PASSWORD_INVALID');
  });

  it('maps structure errors to GB_ERR_PDF_INVALID and an empty file to GB_ERR_EMPTY_INPUT', () => {
    expect(
      classifyPdfOpenError(new PdfJsError({ name: 'InvalidPDFException', message: 'Invalid PDF structure.' }), false)
        .code,
    ).toBe('GB_ERR_PDF_INVALID');
    expect(
      classifyPdfOpenError(new PdfJsError({ name: 'FormatError', message: 'Invalid Root reference.' }), false).code,
    ).toBe('GB_ERR_PDF_INVALID');
    expect(
      classifyPdfOpenError(
        new PdfJsError({ name: 'InvalidPDFException', message: 'The PDF file is empty, i.e. its size is zero bytes.' }),
        false,
      ).code,
    ).toBe('GB_ERR_EMPTY_INPUT');
  });

  it('passes GembatchErrors through and wraps anything else as internal', () => {
    const timeout = new GembatchError('GB_ERR_TIMEOUT', 'slow');
    expect(classifyPdfOpenError(timeout, false)).toBe(timeout);
    expect(classifyPdfOpenError(new Error('boom'), false).code).toBe('GB_ERR_INTERNAL');
  });
});
