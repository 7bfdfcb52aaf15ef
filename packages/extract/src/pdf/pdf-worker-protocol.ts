/** Messages between `PdfWorkerClient` (main thread) and `pdf-worker.ts` (a worker thread running pdf.js). */

/** Opens the document; must be the first request. */
export interface OpenRequest {
  op: 'open';
  path: string;
  /** User password; never logged, never leaves the process. */
  password?: string;
  /** Images above this many pixels inside the PDF are not decoded (decompression-bomb guard). */
  maxImagePixels: number;
}

/** Extracts one page's text layer; measures image coverage too when the layer is thin. */
interface PageTextRequest {
  op: 'pageText';
  /** Page index from 0. */
  page: number;
  /** Measure image coverage only when the page has fewer visible characters than this. */
  coverageBelowChars: number;
}

/** Measures how much of a page painted images cover (0..1). */
interface PageCoverageRequest {
  op: 'pageCoverage';
  page: number;
}

/** Renders a page to RGBA pixels. */
interface RenderRequest {
  op: 'render';
  page: number;
  /** Scale so the longer side is this many pixels (vision). Exclusive with `dpi`. */
  maxSide?: number;
  /** Render at this resolution (OCR). Exclusive with `maxSide`. */
  dpi?: number;
  /** Never render more pixels than this; the scale shrinks to fit. */
  maxPixels: number;
}

/** Reads filled-in AcroForm field values. */
interface FormFieldsRequest {
  op: 'formFields';
}

export type PdfRequest = OpenRequest | PageTextRequest | PageCoverageRequest | RenderRequest | FormFieldsRequest;

/** Content-free facts about the opened document. */
export interface PdfOpenResult {
  /** Page count as the document declares it (already validated by pdf.js). */
  pages: number;
  producer: string | undefined;
  pdfVersion: string | undefined;
  encrypted: boolean;
  hasAcroForm: boolean;
  hasXfa: boolean;
}

interface PageTextResult {
  text: string;
  /** Share of the page covered by images, or `null` when not measured (enough text). */
  imageCoverage: number | null;
}

export interface RenderResult {
  /** RGBA, 4 bytes per pixel, row-major. */
  rgba: Uint8Array;
  width: number;
  height: number;
}

/** A filled field: where it is and what it says. Holds document content. */
export interface FormFieldValue {
  page: number;
  label: string;
  value: string;
}

export interface PdfResultByOp {
  open: PdfOpenResult;
  pageText: PageTextResult;
  pageCoverage: number;
  render: RenderResult;
  formFields: FormFieldValue[];
}

/** A pdf.js error as it crosses the thread boundary. */
export interface SerializedPdfError {
  name: string;
  message: string;
  /** pdf.js `PasswordException.code`: 1 = password needed, 2 = password incorrect. */
  code?: number;
}

export interface PdfWorkerEnvelope {
  id: number;
  request: PdfRequest;
}

export type PdfWorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: SerializedPdfError };
