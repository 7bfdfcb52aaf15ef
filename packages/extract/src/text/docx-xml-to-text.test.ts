import { describe, expect, it } from 'vitest';
import { docxXmlToText } from './docx-xml-to-text.ts';

const body = (inner: string) =>
  `<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>${inner}</w:body></w:document>`;

describe('docxXmlToText', () => {
  it('joins runs into paragraphs and keeps tabs, breaks and entities', () => {
    const xml = body(
      '<w:p><w:r><w:t>Dear </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve">Dr. Smith &amp; team,</w:t></w:r></w:p><w:p><w:r><w:t>Item</w:t><w:tab/><w:t>Qty</w:t><w:br/><w:t>next line</w:t></w:r></w:p>',
    );
    expect(docxXmlToText(xml)).toBe('Dear Dr. Smith & team,\nItem\tQty\nnext line');
  });

  it('lays tables out as rows of tab-separated cells', () => {
    const cell = (text: string) => `<w:tc><w:p><w:r><w:t>${text}</w:t></w:r></w:p></w:tc>`;
    const xml = body(
      `<w:tbl><w:tr>${cell('Test')}${cell('Value')}</w:tr><w:tr>${cell('HbA1c')}${cell('6.1 %')}</w:tr></w:tbl>`,
    );
    expect(docxXmlToText(xml)).toBe('Test\tValue\nHbA1c\t6.1 %');
  });

  it('leaves out tracked deletions and field codes', () => {
    const xml = body(
      '<w:p><w:del><w:r><w:delText>old</w:delText></w:r></w:del><w:ins><w:r><w:t>new</w:t></w:r></w:ins><w:r><w:instrText> PAGE </w:instrText></w:r></w:p>',
    );
    expect(docxXmlToText(xml)).toBe('new');
  });
});
