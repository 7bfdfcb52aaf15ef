/**
 * Worker-thread entry: runs pdf.js (synchronous parsing that can block for seconds) away from
 * the caller's event loop. Handles one request at a time; see `pdf-worker-protocol.ts`.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import * as pdfjs from 'pdfjs-dist/legacy/build/pdf.mjs';
import type { PDFDocumentProxy } from 'pdfjs-dist/types/src/display/api.js';
import { imageCoverage, type CoverageOps } from './image-coverage.ts';
import { countVisibleChars, layoutPageText, type PositionedText } from './page-text-layout.ts';
import type {
  FormFieldValue,
  PdfOpenResult,
  PdfRequest,
  PdfWorkerEnvelope,
  PdfWorkerReply,
  RenderResult,
  SerializedPdfError,
} from './pdf-worker-protocol.ts';

const port = parentPort;
if (!port) throw new Error('pdf-worker.ts must run in a worker thread');

const pdfjsRoot = dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json'));
// pdf.js reads these with fs in Node, so they are directory paths with a trailing slash, not URLs.
const assetDir = (name: string) => join(pdfjsRoot, name) + '/';

const COVERAGE_OPS: CoverageOps = {
  save: pdfjs.OPS.save,
  restore: pdfjs.OPS.restore,
  transform: pdfjs.OPS.transform,
  paintFormXObjectBegin: pdfjs.OPS.paintFormXObjectBegin,
  paintFormXObjectEnd: pdfjs.OPS.paintFormXObjectEnd,
  imagePainters: new Set([
    pdfjs.OPS.paintImageXObject,
    pdfjs.OPS.paintInlineImageXObject,
    pdfjs.OPS.paintInlineImageXObjectGroup,
    pdfjs.OPS.paintImageXObjectRepeat,
    pdfjs.OPS.paintImageMaskXObject,
    pdfjs.OPS.paintImageMaskXObjectGroup,
    pdfjs.OPS.paintImageMaskXObjectRepeat,
  ]),
};

let doc: PDFDocumentProxy | undefined;

async function open(path: string, password: string | undefined, maxImagePixels: number): Promise<PdfOpenResult> {
  const data = new Uint8Array(await readFile(path));
  const task = pdfjs.getDocument({
    data,
    ...(password === undefined ? {} : { password }),
    verbosity: pdfjs.VerbosityLevel.ERRORS,
    // Fonts are parsed without eval: a hostile font program cannot become code.
    isEvalSupported: false,
    useSystemFonts: false,
    maxImageSize: maxImagePixels,
    standardFontDataUrl: assetDir('standard_fonts'),
    cMapUrl: assetDir('cmaps'),
    cMapPacked: true,
    wasmUrl: assetDir('wasm'),
    iccUrl: assetDir('iccs'),
  });
  doc = await task.promise;
  const { info } = (await doc.getMetadata()) as unknown as { info: Record<string, unknown> };
  return {
    pages: doc.numPages,
    producer: typeof info.Producer === 'string' ? info.Producer.slice(0, 200) : undefined,
    pdfVersion: typeof info.PDFFormatVersion === 'string' ? info.PDFFormatVersion : undefined,
    encrypted: typeof info.EncryptFilterName === 'string',
    hasAcroForm: info.IsAcroFormPresent === true,
    hasXfa: info.IsXFAPresent === true,
  };
}

function requireDoc(): PDFDocumentProxy {
  if (!doc) throw new Error('no document is open');
  return doc;
}

async function coverageOf(page: Awaited<ReturnType<PDFDocumentProxy['getPage']>>): Promise<number> {
  const list = await page.getOperatorList();
  return imageCoverage(list.fnArray, list.argsArray, COVERAGE_OPS, page.view);
}

async function pageText(index: number, coverageBelowChars: number) {
  const page = await requireDoc().getPage(index + 1);
  try {
    const content = await page.getTextContent();
    const items = content.items.filter((item): item is typeof item & PositionedText => 'str' in item);
    const text = layoutPageText(items);
    const imageCoverageShare = countVisibleChars(text) < coverageBelowChars ? await coverageOf(page) : null;
    return { text, imageCoverage: imageCoverageShare };
  } finally {
    page.cleanup();
  }
}

async function pageCoverage(index: number): Promise<number> {
  const page = await requireDoc().getPage(index + 1);
  try {
    return await coverageOf(page);
  } finally {
    page.cleanup();
  }
}

async function render(
  index: number,
  maxSide: number | undefined,
  dpi: number | undefined,
  maxPixels: number,
): Promise<RenderResult> {
  const page = await requireDoc().getPage(index + 1);
  try {
    const unit = page.getViewport({ scale: 1 });
    // PDF user space is 72 units per inch.
    let scale = dpi !== undefined ? dpi / 72 : (maxSide ?? 1536) / Math.max(unit.width, unit.height);
    const pixelsAtScale = unit.width * unit.height * scale * scale;
    if (pixelsAtScale > maxPixels) scale *= Math.sqrt(maxPixels / pixelsAtScale);
    const viewport = page.getViewport({ scale });
    const width = Math.max(1, Math.floor(viewport.width));
    const height = Math.max(1, Math.floor(viewport.height));
    const factory = (requireDoc() as unknown as { canvasFactory: CanvasFactory }).canvasFactory;
    const target = factory.create(width, height);
    try {
      await page.render({ canvas: target.canvas as never, canvasContext: target.context as never, viewport }).promise;
      // A copy: the canvas's own buffer belongs to the native addon and cannot be transferred.
      const rgba = new Uint8Array(target.context.getImageData(0, 0, width, height).data);
      return { rgba, width, height };
    } finally {
      factory.destroy(target);
    }
  } finally {
    page.cleanup();
  }
}

interface CanvasAndContext {
  canvas: unknown;
  context: { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
}
interface CanvasFactory {
  create(width: number, height: number): CanvasAndContext;
  destroy(target: CanvasAndContext): void;
}

interface FieldObject {
  type?: string;
  value?: unknown;
  page?: number;
  name?: string;
}

async function formFields(): Promise<FormFieldValue[]> {
  const document = requireDoc();
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- pdf.js declares the widgets loosely; this names the fields read below.
  const objects = (await document.getFieldObjects()) as Record<string, FieldObject[]> | null;
  if (!objects) return [];
  const filled: Array<{ page: number; name: string; value: string }> = [];
  const seen = new Set<string>();
  for (const [name, widgets] of Object.entries(objects)) {
    for (const widget of widgets) {
      const value = fieldValueText(widget);
      if (value === undefined || widget.page === undefined || widget.page < 0) continue;
      const key = `${widget.page}\u0000${name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      filled.push({ page: widget.page, name, value });
    }
  }
  const labels = await alternativeNames(document, new Set(filled.map((field) => field.page)));
  return filled.map((field) => ({
    page: field.page,
    label: labels.get(field.name) || shortFieldName(field.name),
    value: field.value,
  }));
}

function fieldValueText(widget: FieldObject): string | undefined {
  if (widget.type === 'button' || widget.type === 'signature') return undefined;
  const raw = widget.value;
  const value = Array.isArray(raw)
    ? raw.filter((v) => typeof v === 'string' && v.length > 0).join(', ')
    : typeof raw === 'string'
      ? raw
      : undefined;
  if (value === undefined || value.trim().length === 0 || value === 'Off') return undefined;
  if (widget.type === 'checkbox') return 'checked';
  return value;
}

/** Field tooltips (`/TU`) are the human label of a field ("Your first name"); names are often codes. */
async function alternativeNames(document: PDFDocumentProxy, pages: Set<number>): Promise<Map<string, string>> {
  const labels = new Map<string, string>();
  for (const index of pages) {
    const page = await document.getPage(index + 1);
    try {
      for (const annotation of (await page.getAnnotations()) as Array<{
        fieldName?: string;
        alternativeText?: string;
      }>) {
        if (annotation.fieldName && annotation.alternativeText)
          labels.set(annotation.fieldName, annotation.alternativeText.trim());
      }
    } finally {
      page.cleanup();
    }
  }
  return labels;
}

/** `form[0].Page1[0].patient_name[0]` → `patient_name`. */
function shortFieldName(name: string): string {
  const last = name.slice(name.lastIndexOf('.') + 1);
  return last.replace(/\[\d+\]$/, '') || name;
}

async function handle(request: PdfRequest): Promise<{ result: unknown; transfer: ArrayBuffer[] }> {
  switch (request.op) {
    case 'open':
      return { result: await open(request.path, request.password, request.maxImagePixels), transfer: [] };
    case 'pageText':
      return { result: await pageText(request.page, request.coverageBelowChars), transfer: [] };
    case 'pageCoverage':
      return { result: await pageCoverage(request.page), transfer: [] };
    case 'render': {
      const rendered = await render(request.page, request.maxSide, request.dpi, request.maxPixels);
      return { result: rendered, transfer: [rendered.rgba.buffer as ArrayBuffer] };
    }
    case 'formFields':
      return { result: await formFields(), transfer: [] };
  }
}

function serializeError(error: unknown): SerializedPdfError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { name: error.name, message: error.message, ...(typeof code === 'number' ? { code } : {}) };
  }
  return { name: 'Error', message: String(error) };
}

let queue: Promise<void> = Promise.resolve();
port.on('message', (envelope: PdfWorkerEnvelope) => {
  queue = queue.then(async () => {
    let reply: PdfWorkerReply;
    let transfer: ArrayBuffer[] = [];
    try {
      const handled = await handle(envelope.request);
      reply = { id: envelope.id, ok: true, result: handled.result };
      transfer = handled.transfer;
    } catch (error) {
      reply = { id: envelope.id, ok: false, error: serializeError(error) };
    }
    port.postMessage(reply, transfer);
  });
});
port.postMessage({ ready: true });
