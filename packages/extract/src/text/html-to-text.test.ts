import { describe, expect, it } from 'vitest';
import { htmlToText } from './html-to-text.ts';

describe('htmlToText', () => {
  it('keeps every word, drops scripts, styles and comments, and breaks blocks into lines', () => {
    const html = `<!DOCTYPE html><html><head><title>t</title><style>p{color:red}</style></head>
      <body><h1>Discharge&nbsp;summary</h1><!-- hidden note --><script>alert("x")</script>
      <p>Patient is <b>stable</b>.<br>Follow up in 2&#160;weeks &amp; call &#x41;&eacute;.</p>
      <ul><li>aspirin</li><li>rest</li></ul>
      <table><tr><th>Test</th><th>Value</th></tr><tr><td>HbA1c</td><td>6.1 %</td></tr></table></body></html>`;
    expect(htmlToText(html)).toBe(
      [
        'Discharge summary',
        'Patient is stable.',
        'Follow up in 2 weeks & call Aé.',
        '- aspirin',
        '- rest',
        'Test\tValue',
        'HbA1c\t6.1 %',
      ].join('\n'),
    );
  });

  it('reads XML documents such as CDA, with namespaces and CDATA', () => {
    const xml =
      '<?xml version="1.0"?><cda:ClinicalDocument xmlns:cda="urn:hl7-org:v3"><cda:title>Note</cda:title><cda:section><cda:text><![CDATA[BP 120/80 <normal>]]></cda:text></cda:section></cda:ClinicalDocument>';
    expect(htmlToText(xml)).toBe('Note\nBP 120/80 <normal>');
  });

  it('leaves unknown entities as written', () => {
    expect(htmlToText('<p>a &madeup; b</p>')).toBe('a &madeup; b');
  });
});
