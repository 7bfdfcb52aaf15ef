/** Escapes text for an XML text node (SVG `<text>`, a DOCX `<w:t>`): `&`, `<` and `>`. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
