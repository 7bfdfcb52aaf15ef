import { describe, expect, it } from 'vitest';
import { sniffText } from './sniff-text.ts';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('sniffText', () => {
  it('classifies plain text, markdown, HTML, XML, RTF and SVG by content', () => {
    expect(sniffText(bytes('Dear Sir,\nthank you for your letter.\n'), true)).toEqual({
      mime: 'text/plain',
      encoding: 'utf-8',
    });
    expect(sniffText(bytes('# Title\n\n- one\n- two\n\nSee [docs](https://example.org).\n'), true)?.mime).toBe(
      'text/markdown',
    );
    expect(sniffText(bytes('<!-- saved --><!DOCTYPE html><html><body>x</body></html>'), true)?.mime).toBe('text/html');
    expect(sniffText(bytes('<div><p>fragment</p></div>'), true)?.mime).toBe('text/html');
    expect(sniffText(bytes('<?xml version="1.0"?><ClinicalDocument/>'), true)?.mime).toBe('application/xml');
    expect(sniffText(bytes('{\\rtf1\\ansi hello}'), true)?.mime).toBe('application/rtf');
    expect(sniffText(bytes('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>'), true)?.mime).toBe(
      'image/svg+xml',
    );
  });

  it('does not call a single markdown-looking line markdown', () => {
    expect(sniffText(bytes('Total: **not** bold in a plain note.\n'), true)?.mime).toBe('text/plain');
  });

  it('detects UTF-16 by BOM and falls back to Windows-1252 for legacy 8-bit text', () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('Grüße aus Köln', 'utf16le')]);
    expect(sniffText(utf16, true)).toEqual({ mime: 'text/plain', encoding: 'utf-16le' });
    const latin1 = Buffer.from('Caf\xe9 cr\xe8me br\xfbl\xe9e, 12 \x80\n', 'latin1');
    expect(sniffText(latin1, true)).toEqual({ mime: 'text/plain', encoding: 'windows-1252' });
  });

  it('accepts a UTF-8 character cut by the end of a partial head, but not in a complete file', () => {
    const full = bytes('price: 10 €');
    const cut = full.subarray(0, full.length - 1);
    expect(sniffText(cut, false)?.encoding).toBe('utf-8');
    expect(sniffText(cut, true)?.encoding).toBe('windows-1252');
  });

  it('rejects binary data', () => {
    expect(sniffText(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01]), true)).toBeUndefined();
    const controls = new Uint8Array(200).map((_, i) => (i % 3 === 0 ? 0x01 : 0x41));
    expect(sniffText(controls, true)).toBeUndefined();
    expect(sniffText(new Uint8Array(0), true)).toBeUndefined();
  });
});
