// gembatch console: plain ES modules, no framework, no build step. Views render from the API's JSON and
// refresh by polling with backoff (fast while something runs, slower when idle or failing).
import { api, ApiError, signIn, signOut, storedKey, storedRoles } from './api.js';
import { h, bar, fmtBytes, fmtDuration, fmtMs, fmtTime, statusBadge } from './dom.js';

/** Poll delays: every second while work moves, doubling to 15 s when nothing changes or a call fails. */
const POLL_MIN_MS = 1000;
const POLL_MAX_MS = 15000;
/** Samples kept per node for the tok/s sparkline (about two minutes at the fastest poll). */
const SPARK_SAMPLES = 120;
const FINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

const main = document.getElementById('main');
const live = document.getElementById('live');
let stopView = () => {};

function announce(text) {
  live.textContent = text;
}

/** Runs `tick` now and again after a delay that backs off while it reports nothing active. */
function poll(tick) {
  let delay = POLL_MIN_MS;
  let timer;
  let stopped = false;
  const run = async () => {
    if (stopped) return;
    let active = false;
    try {
      active = await tick();
      setAlert('');
    } catch (error) {
      // A revoked key: back to the sign-in form (not a loop of failing calls).
      if (error instanceof ApiError && error.status === 401) return (signOut(), route());
      // Another tenant's id reads exactly like an unknown one: nothing to show, nothing to poll.
      if (error instanceof ApiError && error.status === 404) return setAlert(`Not found: ${error.message}`);
      setAlert(`Could not refresh: ${error.message}`);
    }
    delay = active ? POLL_MIN_MS : Math.min(POLL_MAX_MS, delay * 2);
    if (!stopped) timer = setTimeout(run, delay);
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function setAlert(text) {
  const alert = document.getElementById('alert');
  if (alert && alert.textContent !== text) alert.textContent = text;
}

/** Replaces a region's content, keeping keyboard focus on the element with the same id. */
function replace(region, ...children) {
  const focused = document.activeElement?.id;
  region.replaceChildren(...children);
  if (focused && !document.activeElement?.id) document.getElementById(focused)?.focus();
}

function page(title, ...children) {
  document.title = `${title} · gembatch console`;
  main.replaceChildren(h('h1', {}, title), h('div', { id: 'alert', class: 'alert', role: 'alert' }), ...children);
}

// ---------------------------------------------------------------- sign in

function loginView() {
  document.getElementById('nav').hidden = true;
  const input = h('input', {
    id: 'api-key',
    name: 'api-key',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    'aria-describedby': 'key-hint',
  });
  const form = h(
    'form',
    { class: 'card-form', id: 'login' },
    h('label', { for: 'api-key' }, 'API key or admin token'),
    input,
    h(
      'p',
      { class: 'hint', id: 'key-hint' },
      'Kept in this tab only (sessionStorage) and sent as a Bearer header to this server.',
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const roles = await signIn(input.value.trim());
      location.hash = roles.tenant ? '#/batches' : '#/nodes';
      route();
    } catch (error) {
      setAlert(error.message);
      input.focus();
    }
  });
  page('Sign in', form);
  input.focus();
}

// ---------------------------------------------------------------- batches

function batchFigures(batch, now = Date.now() / 1000) {
  const { total, completed, failed } = batch.request_counts;
  const done = completed + failed;
  const start = batch.in_progress_at;
  const end =
    batch.completed_at ??
    batch.failed_at ??
    batch.cancelled_at ??
    batch.expired_at ??
    (FINAL.has(batch.status) ? batch.finalizing_at : null) ??
    now;
  const elapsed = start ? Math.max(0.001, end - start) : 0;
  const tokPerS = elapsed > 0 ? batch.usage.output_tokens / elapsed : 0;
  const eta = batch.status === 'in_progress' && done > 0 && total > done ? ((total - done) * elapsed) / done : null;
  return { total, completed, failed, done, tokPerS, eta };
}

function batchRow(batch) {
  const f = batchFigures(batch);
  return h(
    'tr',
    {},
    h('td', {}, h('a', { href: `#/batches/${batch.id}` }, h('code', {}, batch.id))),
    h('td', {}, statusBadge(batch.status)),
    h('td', {}, bar(f.done, f.total, `Progress of ${batch.id}`)),
    h('td', { class: 'num' }, `${f.completed} / ${f.failed} / ${f.total}`),
    h('td', { class: 'num' }, f.tokPerS.toFixed(1)),
    h('td', { class: 'num' }, f.eta === null ? '—' : fmtDuration(f.eta)),
    h('td', {}, fmtTime(batch.created_at)),
  );
}

function batchesView() {
  const tbody = h('tbody', { id: 'batch-rows' });
  const table = h(
    'table',
    { 'aria-describedby': 'batches-caption' },
    h('caption', { id: 'batches-caption', class: 'visually-hidden' }, 'Batches, newest first'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['Batch', 'Status', 'Progress', 'Completed / failed / total', 'tok/s', 'ETA', 'Created'].map((t) =>
          h('th', { scope: 'col' }, t),
        ),
      ),
    ),
    tbody,
  );
  page('Batches', createBatchForm(), h('h2', {}, 'All batches'), table);
  let last = '';
  stopView = poll(async () => {
    const list = await api.get('/v1/batches?limit=100');
    const json = JSON.stringify(list.data);
    if (json !== last) {
      last = json;
      replace(
        tbody,
        ...(list.data.length
          ? list.data.map((b) => batchRow(b))
          : [h('tr', {}, h('td', { colspan: '7' }, 'No batches yet.'))]),
      );
    }
    return list.data.some((b) => !FINAL.has(b.status));
  });
}

/** Uploads the chosen files, then creates one `/v1/jobs` batch of them from a JSONL input (OpenAI's form). */
function createBatchForm() {
  const files = h('input', { id: 'batch-files', type: 'file', multiple: true, required: true });
  const task = h(
    'select',
    { id: 'batch-task' },
    ...['summarize', 'classify', 'extract', 'redact', 'prompt', 'describe', 'transcribe'].map((t) =>
      h('option', { value: t }, t),
    ),
  );
  const maxTokens = h('input', {
    id: 'batch-max-tokens',
    type: 'number',
    min: '1',
    max: '8192',
    inputmode: 'numeric',
    placeholder: 'model default',
  });
  const submit = h('button', { type: 'submit', id: 'create-batch' }, 'Create batch');
  const status = h('p', { class: 'hint', id: 'create-status', role: 'status' });
  const form = h(
    'form',
    { class: 'card-form', id: 'create-form', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, 'New batch from files'),
    h('label', { for: 'batch-files' }, 'Documents'),
    files,
    h('label', { for: 'batch-task' }, 'Task'),
    task,
    h('label', { for: 'batch-max-tokens' }, 'Max tokens per request (optional)'),
    maxTokens,
    h('div', { class: 'actions' }, submit),
    status,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const ids = [];
      for (const [i, file] of [...files.files].entries()) {
        status.textContent = `Uploading ${i + 1} of ${files.files.length}…`;
        const body = new FormData();
        body.append('purpose', 'user_data');
        body.append('file', file, file.name);
        ids.push((await api.post('/v1/files', body)).id);
      }
      status.textContent = 'Creating the batch…';
      // One `/v1/jobs` line per file with the file's name as custom_id (as `gembatch batch create` does), so the batch page names its inputs.
      const seen = new Map();
      const lines = [...files.files].map((file, i) => {
        const count = (seen.get(file.name) ?? 0) + 1;
        seen.set(file.name, count);
        const customId = count === 1 ? file.name : `${file.name}#${count}`;
        return JSON.stringify({
          custom_id: customId,
          method: 'POST',
          url: '/v1/jobs',
          body: {
            file_id: ids[i],
            task: task.value,
            ...(maxTokens.value ? { max_tokens: Number(maxTokens.value) } : {}),
          },
        });
      });
      const input = new FormData();
      input.append('purpose', 'batch');
      input.append('file', new Blob([`${lines.join('\n')}\n`], { type: 'application/jsonl' }), 'console-batch.jsonl');
      const inputFile = await api.post('/v1/files', input);
      const batch = await api.post('/v1/batches', {
        input_file_id: inputFile.id,
        endpoint: '/v1/jobs',
        completion_window: '24h',
      });
      announce(`Batch ${batch.id} created`);
      location.hash = `#/batches/${batch.id}`;
    } catch (error) {
      status.textContent = '';
      setAlert(`Could not create the batch: ${error.message}`);
      submit.disabled = false;
    }
  });
  return form;
}

async function download(path, filename) {
  const blob = await api.blob(path);
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function batchView(id) {
  const facts = h('div', { id: 'batch-facts' });
  const rows = h('tbody', { id: 'request-rows' });
  const pager = h('div', { class: 'actions', id: 'request-pager' });
  const downloadOutput = h(
    'button',
    { type: 'button', id: 'download-output', class: 'secondary' },
    'Download output (JSONL)',
  );
  const downloadErrors = h(
    'button',
    { type: 'button', id: 'download-errors', class: 'secondary' },
    'Download errors (JSONL)',
  );
  const cancel = h('button', { type: 'button', id: 'cancel-batch', class: 'danger' }, 'Cancel batch…');
  const dialog = h(
    'dialog',
    { id: 'cancel-dialog', 'aria-labelledby': 'cancel-title' },
    h('h2', { id: 'cancel-title' }, 'Cancel this batch?'),
    h('p', {}, 'Queued requests are withdrawn and running ones stopped. Finished results are kept.'),
    h(
      'form',
      { method: 'dialog', class: 'actions' },
      h('button', { value: 'keep', class: 'secondary', autofocus: true }, 'Keep running'),
      h('button', { value: 'cancel', class: 'danger', id: 'confirm-cancel' }, 'Cancel batch'),
    ),
  );
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'cancel') return cancel.focus();
    try {
      await api.post(`/v1/batches/${id}/cancel`);
      announce('Cancel requested');
    } catch (error) {
      setAlert(`Could not cancel: ${error.message}`);
    }
    cancel.focus();
  });
  cancel.addEventListener('click', () => dialog.showModal());
  downloadOutput.addEventListener('click', () =>
    download(`/v1/batches/${id}/output`, `${id}.output.jsonl`).catch((e) => setAlert(e.message)),
  );
  downloadErrors.addEventListener('click', () =>
    download(`/v1/batches/${id}/errors`, `${id}.errors.jsonl`).catch((e) => setAlert(e.message)),
  );

  const table = h(
    'table',
    {},
    h('caption', { class: 'visually-hidden' }, 'Requests of this batch in input order'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['#', 'Custom id', 'Status', 'Error', 'Queue', 'Extract', 'TTFT', 'Generate', 'Job'].map((t) =>
          h('th', { scope: 'col' }, t),
        ),
      ),
    ),
    rows,
  );
  page(
    `Batch ${id}`,
    facts,
    h('div', { class: 'actions' }, downloadOutput, downloadErrors, cancel),
    dialog,
    h('h2', {}, 'Requests'),
    table,
    pager,
  );

  const state = { offset: 0, limit: 50, open: new Set(), last: '' };
  const renderRequests = (list) => {
    replace(
      rows,
      ...list.data.map((r) => {
        const errorId = `error-${r.index}`;
        const errorCell = r.error
          ? h(
              'td',
              {},
              h('code', {}, r.error.code),
              ' ',
              h(
                'button',
                {
                  type: 'button',
                  class: 'link',
                  id: `toggle-${errorId}`,
                  'aria-expanded': String(state.open.has(r.index)),
                  'aria-controls': errorId,
                  onclick: () => (
                    state.open.has(r.index) ? state.open.delete(r.index) : state.open.add(r.index), renderRequests(list)
                  ),
                },
                state.open.has(r.index) ? 'Hide error' : 'Show error',
              ),
              h('p', { id: errorId, class: 'error-detail', hidden: !state.open.has(r.index) }, r.error.message),
            )
          : h('td', {}, '—');
        const t = r.timings;
        return h(
          'tr',
          {},
          h('td', { class: 'num' }, String(r.index + 1)),
          h('td', {}, r.custom_id),
          h('td', {}, statusBadge(r.status)),
          errorCell,
          h('td', { class: 'num' }, fmtMs(t?.queue_wait_ms)),
          h('td', { class: 'num' }, fmtMs(t?.extract_ms)),
          h('td', { class: 'num' }, fmtMs(t?.time_to_first_token_ms)),
          h('td', { class: 'num' }, fmtMs(t?.generate_ms)),
          h('td', {}, r.job_id ? h('a', { href: `#/jobs/${r.job_id}` }, h('code', {}, r.job_id)) : '—'),
        );
      }),
    );
    const prev = h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        disabled: state.offset === 0,
        onclick: () => ((state.offset = Math.max(0, state.offset - state.limit)), refresh()),
      },
      'Previous',
    );
    const next = h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        disabled: !list.has_more,
        onclick: () => ((state.offset += state.limit), refresh()),
      },
      'Next',
    );
    const shown = list.data.length
      ? `${list.offset + 1}–${list.offset + list.data.length} of ${list.total}`
      : `0 of ${list.total}`;
    replace(pager, prev, h('span', {}, shown), next);
  };
  let lastBatch = '';
  const refresh = async () => {
    const [batch, list] = await Promise.all([
      api.get(`/v1/batches/${id}`),
      api.get(`/v1/batches/${id}/requests?offset=${state.offset}&limit=${state.limit}`),
    ]);
    const f = batchFigures(batch);
    const batchJson = JSON.stringify(batch);
    if (batchJson !== lastBatch) {
      if (lastBatch && JSON.parse(lastBatch).status !== batch.status) announce(`Batch ${batch.status}`);
      lastBatch = batchJson;
      replace(
        facts,
        h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'Status'),
          h('dd', {}, statusBadge(batch.status)),
          h('dt', {}, 'Progress'),
          h('dd', {}, bar(f.done, f.total, 'Batch progress')),
          h('dt', {}, 'Completed / failed / total'),
          h('dd', { id: 'batch-counts' }, `${f.completed} / ${f.failed} / ${f.total}`),
          h('dt', {}, 'Tokens in / out'),
          h('dd', {}, `${batch.usage.input_tokens} / ${batch.usage.output_tokens}`),
          h('dt', {}, 'tok/s'),
          h('dd', {}, f.tokPerS.toFixed(1)),
          h('dt', {}, 'ETA'),
          h('dd', {}, f.eta === null ? '—' : fmtDuration(f.eta)),
          h('dt', {}, 'Endpoint'),
          h('dd', {}, h('code', {}, batch.endpoint)),
          h('dt', {}, 'Created'),
          h('dd', {}, fmtTime(batch.created_at)),
          h('dt', {}, 'Ends by'),
          h('dd', {}, fmtTime(batch.expires_at)),
          ...(batch.errors?.data?.length
            ? [
                h('dt', {}, 'Input errors'),
                h('dd', {}, batch.errors.data.map((e) => `${e.code} (line ${e.line ?? '?'}): ${e.message}`).join('; ')),
              ]
            : []),
        ),
      );
      cancel.disabled = FINAL.has(batch.status) || batch.status === 'cancelling';
      downloadErrors.disabled = batch.request_counts.failed === 0;
    }
    const listJson = JSON.stringify(list);
    if (listJson !== state.last) {
      state.last = listJson;
      renderRequests(list);
    }
    return !FINAL.has(batch.status);
  };
  stopView = poll(refresh);
}

// ---------------------------------------------------------------- jobs

function jobView(id) {
  const facts = h('div', { id: 'job-facts' });
  const resultButton = h(
    'button',
    { type: 'button', id: 'show-result', class: 'secondary', 'aria-controls': 'job-result', 'aria-expanded': 'false' },
    'Show result',
  );
  const result = h('pre', {
    id: 'job-result',
    class: 'result',
    hidden: true,
    tabindex: '0',
    'aria-label': 'Job result',
  });
  resultButton.addEventListener('click', async () => {
    if (!result.hidden) {
      result.hidden = true;
      result.textContent = '';
      resultButton.textContent = 'Show result';
      resultButton.setAttribute('aria-expanded', 'false');
      return;
    }
    try {
      // Fetched only on this click: the console never shows document text or outputs unasked.
      const doc = await api.get(`/v1/jobs/${id}/result`);
      result.textContent = JSON.stringify(doc.output, null, 2);
      result.hidden = false;
      resultButton.textContent = 'Hide result';
      resultButton.setAttribute('aria-expanded', 'true');
    } catch (error) {
      setAlert(error.message);
    }
  });
  page(`Job ${id}`, facts, h('div', { class: 'actions' }, resultButton), result);
  let last = '';
  stopView = poll(async () => {
    const job = await api.get(`/v1/jobs/${id}`);
    const json = JSON.stringify(job);
    if (json !== last) {
      last = json;
      const t = job.timings ?? {};
      const u = job.usage ?? {};
      replace(
        facts,
        h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'Status'),
          h('dd', {}, statusBadge(job.status)),
          h('dt', {}, 'Task'),
          h('dd', {}, job.task),
          h('dt', {}, 'Created'),
          h('dd', {}, fmtTime(Date.parse(job.created_at) / 1000)),
          h('dt', {}, 'Finished'),
          h('dd', {}, job.finished_at ? fmtTime(Date.parse(job.finished_at) / 1000) : '—'),
          h('dt', {}, 'Queue wait'),
          h('dd', {}, fmtMs(t.queue_wait_ms)),
          h('dt', {}, 'Extract'),
          h('dd', {}, fmtMs(t.extract_ms)),
          h('dt', {}, 'Time to first token'),
          h('dd', {}, fmtMs(t.time_to_first_token_ms)),
          h('dt', {}, 'Generate'),
          h('dd', {}, fmtMs(t.generate_ms)),
          h('dt', {}, 'Total'),
          h('dd', {}, fmtMs(t.total_ms)),
          h('dt', {}, 'Prompt / generated / media tokens'),
          h('dd', {}, job.usage ? `${u.prompt_tokens} / ${u.generated_tokens} / ${u.media_tokens}` : '—'),
          h('dt', {}, 'Finish reason'),
          h('dd', {}, job.finish_reason ?? '—'),
          ...(job.error
            ? [h('dt', {}, 'Error'), h('dd', {}, h('code', {}, job.error.code), ` ${job.error.message}`)]
            : []),
        ),
      );
      resultButton.disabled = job.status !== 'completed';
    }
    return !FINAL.has(job.status);
  });
}

// ---------------------------------------------------------------- schedules

function schedulesView() {
  const list = h('div', { id: 'schedule-list' });
  page('Schedules', list);
  const act = async (id, verb) => {
    try {
      await api.post(`/v1/schedules/${id}/${verb}`);
      announce(verb === 'run' ? 'Run queued' : `Schedule ${verb === 'pause' ? 'paused' : 'resumed'}`);
      restart();
    } catch (error) {
      setAlert(error.message);
    }
  };
  let last = '';
  const tick = async () => {
    const schedules = (await api.get('/v1/schedules')).data;
    const runs = await Promise.all(
      schedules.map((s) => api.get(`/v1/schedules/${s.id}/runs?limit=5`).then((r) => r.data)),
    );
    const json = JSON.stringify([schedules, runs]);
    if (json !== last) {
      last = json;
      replace(
        list,
        ...(schedules.length === 0
          ? [h('p', {}, 'No schedules. Create one with the API or `gembatch schedule add`.')]
          : schedules.map((s, i) =>
              h(
                'section',
                { class: 'card', 'aria-labelledby': `schedule-${s.id}` },
                h('h2', { id: `schedule-${s.id}` }, h('code', {}, s.id), ' ', statusBadge(s.status)),
                h(
                  'dl',
                  { class: 'facts' },
                  h('dt', {}, 'Cron'),
                  h('dd', {}, h('code', {}, s.cron), ` (${s.timezone})`),
                  h('dt', {}, 'Next run'),
                  h('dd', {}, s.next_run_at ? fmtTime(s.next_run_at) : '—'),
                  h('dt', {}, 'Source → output'),
                  h('dd', {}, `${s.source_folder} → ${s.output_folder}`),
                ),
                h(
                  'div',
                  { class: 'actions' },
                  s.status === 'active'
                    ? h(
                        'button',
                        { type: 'button', class: 'secondary', id: `pause-${s.id}`, onclick: () => act(s.id, 'pause') },
                        'Pause',
                      )
                    : h(
                        'button',
                        {
                          type: 'button',
                          class: 'secondary',
                          id: `resume-${s.id}`,
                          onclick: () => act(s.id, 'resume'),
                        },
                        'Resume',
                      ),
                  h('button', { type: 'button', id: `run-${s.id}`, onclick: () => act(s.id, 'run') }, 'Run now'),
                ),
                h(
                  'table',
                  {},
                  h('caption', { class: 'visually-hidden' }, `Last runs of ${s.id}`),
                  h(
                    'thead',
                    {},
                    h(
                      'tr',
                      {},
                      ...['Started', 'Trigger', 'Status', 'New files', 'Batch'].map((t) =>
                        h('th', { scope: 'col' }, t),
                      ),
                    ),
                  ),
                  h(
                    'tbody',
                    {},
                    ...(runs[i].length === 0
                      ? [h('tr', {}, h('td', { colspan: '5' }, 'No runs yet.'))]
                      : runs[i].map((r) =>
                          h(
                            'tr',
                            {},
                            h('td', {}, r.started_at ? fmtTime(r.started_at) : '—'),
                            h('td', {}, r.trigger),
                            h('td', {}, statusBadge(r.status)),
                            h('td', { class: 'num' }, r.files_new ?? '—'),
                            h(
                              'td',
                              {},
                              r.batch_id ? h('a', { href: `#/batches/${r.batch_id}` }, h('code', {}, r.batch_id)) : '—',
                            ),
                          ),
                        )),
                  ),
                ),
              ),
            )),
      );
    }
    return runs.some((r) => r.some((run) => run.status === 'queued' || run.status === 'running'));
  };
  const restart = () => {
    stopView();
    stopView = poll(tick);
  };
  stopView = poll(tick);
}

// ---------------------------------------------------------------- nodes

const sparkHistory = new Map();

function sparkline(node, values) {
  const max = Math.max(0, ...values);
  const scale = Math.max(1, max);
  const points = values
    .map((v, i) => `${values.length === 1 ? 100 : (i / (values.length - 1)) * 100},${40 - (v / scale) * 36}`)
    .join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 100 42');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `tok/s of ${node}, last ${values.length} samples`);
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', points);
  line.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.append(line);
  svg.dataset.samples = String(values.length);
  return [svg, h('p', { class: 'spark-caption' }, `tok/s, last ${values.length} samples, peak ${max.toFixed(1)}`)];
}

function nodesView() {
  const cards = h('div', { class: 'cards', id: 'node-cards' });
  const queues = h('tbody', { id: 'queue-rows' });
  page(
    'Nodes',
    cards,
    h('h2', {}, 'Queues'),
    h(
      'table',
      {},
      h('caption', { class: 'visually-hidden' }, 'Queue depths'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['Queue', 'Waiting', 'Prioritized', 'Active', 'Delayed', 'Failed'].map((t) =>
            h('th', { scope: 'col' }, t),
          ),
        ),
      ),
      queues,
    ),
  );
  stopView = poll(async () => {
    const fleet = await api.get('/admin/fleet');
    for (const n of fleet.nodes) {
      const history = sparkHistory.get(n.node) ?? [];
      history.push(n.generation_tokens_per_second);
      if (history.length > SPARK_SAMPLES) history.shift();
      sparkHistory.set(n.node, history);
    }
    replace(
      cards,
      ...(fleet.nodes.length === 0
        ? [h('p', {}, 'No live node (a node appears once its worker has loaded a model and sent a heartbeat).')]
        : fleet.nodes.map((n) => {
            const memory =
              n.vram_total_bytes > 0
                ? `${fmtBytes(n.vram_used_bytes)} of ${fmtBytes(n.vram_total_bytes)} VRAM`
                : `${fmtBytes(n.ram_used_bytes)}${n.ram_total_bytes ? ` of ${fmtBytes(n.ram_total_bytes)}` : ''} RAM`;
            return h(
              'section',
              { class: 'card node-card', 'aria-labelledby': `node-${n.node}` },
              h('h2', { id: `node-${n.node}` }, n.node),
              h(
                'dl',
                { class: 'facts' },
                h('dt', {}, 'Model'),
                h('dd', {}, n.model),
                h('dt', {}, 'Quant'),
                h('dd', {}, n.quant),
                h('dt', {}, 'Sequences in use'),
                h('dd', {}, `${n.active_sequences} of ${n.sequences}`),
                h('dt', {}, 'Memory'),
                h('dd', {}, memory),
                h('dt', {}, 'Accelerator'),
                h('dd', {}, `${n.accelerator} (${n.gpu})`),
                h('dt', {}, 'tok/s'),
                h('dd', {}, n.generation_tokens_per_second.toFixed(1)),
              ),
              sparkline(n.node, sparkHistory.get(n.node) ?? []),
            );
          })),
    );
    replace(
      queues,
      ...fleet.queues.map((q) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, q.name),
          ...[q.waiting, q.prioritized, q.active, q.delayed, q.failed].map((v) => h('td', { class: 'num' }, String(v))),
        ),
      ),
    );
    // The sparkline wants steady samples: keep polling at the fast rate while this view is open.
    return true;
  });
}

// ---------------------------------------------------------------- all tenants (admin)

/** Batches shown per page of the all-tenants view. */
const TENANT_PAGE = 50;

function tenantsView() {
  const tbody = h('tbody', { id: 'tenant-batch-rows' });
  const more = h('button', { type: 'button', id: 'tenants-more', hidden: true }, 'Older batches');
  const table = h(
    'table',
    { 'aria-describedby': 'tenants-caption' },
    h('caption', { id: 'tenants-caption', class: 'visually-hidden' }, 'Batches of every tenant, newest first'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['Tenant', 'Batch', 'Status', 'Progress', 'Completed / failed / total', 'Created'].map((t) =>
          h('th', { scope: 'col' }, t),
        ),
      ),
    ),
    tbody,
  );
  page(
    'All tenants',
    h('p', { class: 'hint' }, "Ids, statuses and counts only; open a batch with its tenant's key."),
    table,
    h('div', { class: 'actions' }, more),
  );
  // Pages past the first are kept as loaded; the first page is refreshed by the poll.
  let pages = 1;
  let last = '';
  const load = async () => {
    const rows = [];
    let after;
    let hasMore = false;
    for (let i = 0; i < pages; i++) {
      const list = await api.get(
        `/admin/batches?limit=${TENANT_PAGE}${after ? `&after=${encodeURIComponent(after)}` : ''}`,
      );
      rows.push(...list.data);
      hasMore = list.has_more;
      after = list.last_id;
      if (!hasMore || !after) break;
    }
    const json = JSON.stringify([rows, hasMore]);
    if (json !== last) {
      last = json;
      more.hidden = !hasMore;
      replace(
        tbody,
        ...(rows.length
          ? rows.map((b) => {
              const { total, completed, failed } = b.request_counts;
              return h(
                'tr',
                {},
                h('td', {}, b.tenant),
                h('td', {}, h('code', {}, b.id)),
                h('td', {}, statusBadge(b.status)),
                h('td', {}, bar(completed + failed, total, `Progress of ${b.id}`)),
                h('td', { class: 'num' }, `${completed} / ${failed} / ${total}`),
                h('td', {}, fmtTime(b.created_at)),
              );
            })
          : [h('tr', {}, h('td', { colspan: '6' }, 'No batches yet.'))]),
      );
    }
    return rows.some((b) => !FINAL.has(b.status));
  };
  more.addEventListener('click', () => {
    pages += 1;
    load().catch((error) => setAlert(`Could not load: ${error.message}`));
  });
  stopView = poll(load);
}

// ---------------------------------------------------------------- routing

function route() {
  stopView();
  stopView = () => {};
  if (!storedKey()) return loginView();
  const roles = storedRoles();
  const nav = document.getElementById('nav');
  nav.hidden = false;
  document.getElementById('nav-nodes').hidden = !roles.admin;
  document.getElementById('nav-tenants').hidden = !roles.admin;
  for (const link of nav.querySelectorAll('[data-section="batches"], [data-section="schedules"]'))
    link.hidden = !roles.tenant;
  const [, section = roles.tenant ? 'batches' : 'nodes', id] = location.hash.replace(/^#/, '').split('/');
  for (const link of nav.querySelectorAll('a[data-section]')) {
    if (link.dataset.section === section || (section === 'jobs' && link.dataset.section === 'batches'))
      link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (section === 'nodes' && roles.admin) nodesView();
  else if (section === 'tenants' && roles.admin) tenantsView();
  else if (!roles.tenant) return (location.hash = '#/nodes');
  else if (section === 'batches' && id) batchView(decodeURIComponent(id));
  else if (section === 'jobs' && id) jobView(decodeURIComponent(id));
  else if (section === 'schedules') schedulesView();
  else batchesView();
  main.focus({ preventScroll: true });
}

document.getElementById('sign-out').addEventListener('click', () => {
  signOut();
  location.hash = '';
  route();
});
window.addEventListener('hashchange', route);
route();
