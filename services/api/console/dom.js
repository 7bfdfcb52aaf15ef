// Small DOM helpers: elements are built with text nodes (never innerHTML), so ids and messages from
// the API cannot inject markup.

/** `h('a', {href: '#'}, 'text', child)`: attributes (functions for `on…`, booleans as presence) and children. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) element.setAttribute(name, '');
    else if (value !== false && value !== undefined && value !== null) element.setAttribute(name, String(value));
  }
  for (const child of children.flat())
    if (child !== null && child !== undefined && child !== false)
      element.append(child instanceof Node ? child : String(child));
  return element;
}

/** A progress bar with its percentage as text (role `progressbar`, so screen readers read the value). */
export function bar(done, total, label) {
  const pct = total > 0 ? Math.floor((done / total) * 100) : 0;
  const fill = h('span');
  // Through the CSSOM: the console's CSP refuses style attributes.
  fill.style.width = `${pct}%`;
  return h(
    'span',
    { class: 'progress' },
    h(
      'span',
      {
        class: 'bar',
        role: 'progressbar',
        'aria-label': label,
        'aria-valuemin': '0',
        'aria-valuemax': '100',
        'aria-valuenow': String(pct),
        'aria-valuetext': `${pct}% (${done} of ${total})`,
      },
      fill,
    ),
    h('span', { class: 'pct' }, `${pct}%`),
  );
}

export function statusBadge(status) {
  return h('span', { class: `status status-${status}` }, status.replace('_', ' '));
}

export function fmtTime(unixSeconds) {
  if (!unixSeconds) return '—';
  return new Date(unixSeconds * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function fmtDuration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function fmtBytes(bytes) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
