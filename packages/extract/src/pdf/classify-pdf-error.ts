import { GembatchError } from '@gembatch/contracts';
import { PdfJsError } from './pdf-worker-client.ts';

// pdf.js PasswordResponses: 1 = a password is needed, 2 = the one given is wrong.
const NEED_PASSWORD = 1;
const INCORRECT_PASSWORD = 2;

/**
 * Maps a failure to open a PDF to a stable error: password needed or wrong, empty, or invalid
 * structure. Errors that are already `GembatchError`s (timeouts, cancellation, memory) pass through.
 */
export function classifyPdfOpenError(error: unknown, passwordGiven: boolean): GembatchError {
  if (error instanceof GembatchError) return error;
  if (!(error instanceof PdfJsError))
    return new GembatchError('GB_ERR_INTERNAL', 'the PDF could not be opened', { cause: error });
  if (error.pdfName === 'PasswordException') {
    if (error.pdfCode === INCORRECT_PASSWORD || (error.pdfCode !== NEED_PASSWORD && passwordGiven)) {
      return new GembatchError('GB_ERR_PDF_PASSWORD_INVALID', 'the password given does not open the PDF');
    }
    return new GembatchError(
      'GB_ERR_PDF_PASSWORD_REQUIRED',
      'the PDF is encrypted with a user password: send the password with the job',
    );
  }
  if (error.pdfName === 'InvalidPDFException' && /empty/i.test(error.message))
    return new GembatchError('GB_ERR_EMPTY_INPUT', 'the PDF file is empty');
  // pdf.js messages describe structure ("Invalid PDF structure.", "Invalid XRef stream") and never quote content.
  return new GembatchError('GB_ERR_PDF_INVALID', `the PDF is corrupt or truncated: ${error.message}`, { cause: error });
}
