import type { ExtractedDocument } from '@gembatch/contracts';

/** What joins the parts of a `PartedDocument`'s text: a blank line, as between the pages of a PDF. */
const PART_SEPARATOR = '\n\n';

/**
 * An extraction result whose text is still in parts (a PDF's pages): `document.text` is empty and
 * the parts joined with a blank line are the text. The extraction process sends the parts as they
 * are; joining 20,000 pages there first held the document's text twice (75 MiB more at its peak).
 */
export interface PartedDocument {
  /** The result, with `text: ''`. */
  document: ExtractedDocument;
  textParts: readonly string[];
}

/** A result whose text is one part. */
export function partedDocument(document: ExtractedDocument): PartedDocument {
  return { document: { ...document, text: '' }, textParts: [document.text] };
}

/** The result with its text joined. */
export function joinedDocument(parted: PartedDocument): ExtractedDocument {
  return { ...parted.document, text: parted.textParts.join(PART_SEPARATOR) };
}

/**
 * The text in runs of pieces of about `runChars` characters together (a part longer than that is
 * cut; shorter ones and the separators between them are gathered up to it), in order: all pieces
 * concatenated are `joinedDocument(parted).text`. The pieces are the parts themselves (or slices
 * of them, which share their memory), so a run costs no copy of the text.
 */
export function* textRuns(parted: PartedDocument, runChars: number): Generator<string[]> {
  let run: string[] = [];
  let runLength = 0;
  const add = (piece: string) => {
    run.push(piece);
    runLength += piece.length;
  };
  for (const [index, part] of parted.textParts.entries()) {
    if (index > 0) add(PART_SEPARATOR);
    for (let offset = 0; offset < part.length; offset += runChars) {
      add(offset === 0 && part.length <= runChars ? part : part.slice(offset, offset + runChars));
      if (runLength >= runChars) {
        yield run;
        run = [];
        runLength = 0;
      }
    }
  }
  if (runLength > 0) yield run;
}
