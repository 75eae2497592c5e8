// skillsync dashboard: plain JS, no build step. Reads the admin API with the operator's token,
// kept in sessionStorage (or handed over in the URL fragment by `skillsync demo`: a fragment is
// never sent to the server, so the token never reaches a log). Polls every 2 s.
const POLL_MS = 2000;
const KEY = 'skillsync.adminToken';
const $ = (id) => document.getElementById(id);

function takeTokenFromFragment() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
}

function token() {
  return sessionStorage.getItem(KEY);
}

class AuthError extends Error {}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token()}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403) throw new AuthError(data.message || 'unauthorized');
  if (!res.ok && res.status !== 409) throw new Error(data.message || `HTTP ${res.status}`);
  return { status: res.status, data };
}

const text = (id, value) => {
  $(id).textContent = value === null || value === undefined || value === '' ? '–' : String(value);
};
const when = (iso) => {
  if (!iso) return null;
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  const rel = s >= 0 ? `${fmtAge(s)} ago` : `in ${fmtAge(-s)}`;
  return `${new Date(iso).toLocaleTimeString()} (${rel})`;
};
function fmtAge(s) {
  if (s < 90) return `${s}s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

function showLogin(message) {
  $('main').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('conn').textContent = 'signed out';
  $('conn').className = 'pill';
}

function renderStatus(s) {
  text('sync-state', s.status);
  text('sync-running', s.running_run_id);
  text('sync-last-success', when(s.last_success_at));
  text('sync-next', s.auto_sync ? when(s.next_run_at) : 'auto sync off');
  text('sync-error', s.last_error);
  text('sync-held', s.held_deletions.count ? `${s.held_deletions.count} (confirm via API)` : 0);
  const ws = s.websocket;
  text('ws-state', ws.configured ? `${ws.state}${ws.enabled ? '' : ' (disabled)'}` : 'not configured');
  text('ws-connected', ws.connected ? 'yes' : 'no');
  text('ws-last-message', when(ws.last_message_at));
  text('ws-reconnects', ws.reconnect_attempts);
  text(
    'ws-counts',
    Object.entries(ws.counts)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 0,
  );
  $('ws-reconnect').disabled = !ws.configured;
  text('cache-skills', s.counts.skills);
  text('cache-stale', s.counts.stale_skills);
  text('cache-categories', s.counts.categories);
  text('cache-overrides', s.counts.local_overrides);
  text(
    'cache-freshness',
    s.freshness.synced_at
      ? `synced ${when(s.freshness.synced_at)}${s.freshness.stale ? ' — stale' : ''}`
      : 'never synced',
  );
  text('cache-remote', s.freshness.remote);
  text('outbox-pending', s.counts.outbox.pending);
  text('outbox-in-flight', s.counts.outbox.in_flight);
  text('outbox-done', s.counts.outbox.done);
  text('outbox-dead', s.counts.outbox.dead);
}

function cell(row, value, className) {
  const td = document.createElement('td');
  td.textContent = value === null || value === undefined ? '' : String(value);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function renderRuns(runs) {
  const body = $('runs');
  body.replaceChildren();
  for (const r of runs.items) {
    const tr = document.createElement('tr');
    tr.dataset.runId = String(r.id);
    cell(tr, r.id);
    cell(tr, r.trigger);
    cell(tr, r.mode);
    cell(tr, r.status, `status-${r.status}`);
    cell(tr, new Date(r.started_at).toLocaleTimeString());
    cell(tr, r.duration_ms === null ? '…' : `${(r.duration_ms / 1000).toFixed(1)} s`);
    cell(tr, r.upserted);
    cell(tr, r.unchanged);
    cell(tr, r.deleted);
    cell(tr, r.error);
    body.appendChild(tr);
  }
}

function renderConflicts(conflicts) {
  text('conflicts-total', `(${conflicts.total})`);
  const body = $('conflicts');
  body.replaceChildren();
  for (const c of conflicts.items) {
    const tr = document.createElement('tr');
    tr.dataset.conflictId = String(c.id);
    cell(tr, c.id);
    cell(tr, c.skill_id);
    cell(tr, c.type);
    cell(tr, c.severity);
    cell(tr, c.fields.join(', '));
    const td = cell(tr, '');
    for (const strategy of ['remote_wins', 'local_wins', 'merge']) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'secondary';
      b.textContent = strategy.replace('_', ' ');
      b.addEventListener('click', () =>
        act(() => api('POST', `/api/admin/conflicts/${c.id}/resolve`, { strategy }), 'sync-message'),
      );
      td.appendChild(b);
      td.append(' ');
    }
    body.appendChild(tr);
  }
}

async function refresh() {
  if (!token()) return showLogin();
  try {
    const [status, runs, conflicts] = await Promise.all([
      api('GET', '/api/admin/sync/status'),
      api('GET', '/api/admin/sync/runs?page_size=10'),
      api('GET', '/api/admin/conflicts?status=open&page_size=20'),
    ]);
    $('login').hidden = true;
    $('main').hidden = false;
    renderStatus(status.data);
    renderRuns(runs.data);
    renderConflicts(conflicts.data);
    $('conn').textContent = 'live';
    $('conn').className = 'pill ok';
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (err instanceof AuthError) {
      sessionStorage.removeItem(KEY);
      return showLogin(err.message);
    }
    $('conn').textContent = 'service unreachable';
    $('conn').className = 'pill bad';
  }
}

async function act(call, messageId) {
  try {
    const { status, data } = await call();
    if (status === 202 && data.run_id) $(messageId).textContent = `run ${data.run_id} started`;
    else if (status === 409)
      $(messageId).textContent = data.run_id ? `run ${data.run_id} already running` : data.message;
    else $(messageId).textContent = 'done';
  } catch (err) {
    $(messageId).textContent = err.message;
  }
  await refresh();
}

$('sync-now').addEventListener('click', () =>
  act(() => api('POST', '/api/admin/sync/trigger', { mode: 'incremental' }), 'sync-message'),
);
$('sync-full').addEventListener('click', () =>
  act(() => api('POST', '/api/admin/sync/trigger', { mode: 'full' }), 'sync-message'),
);
$('ws-reconnect').addEventListener('click', () =>
  act(() => api('POST', '/api/admin/websocket/reconnect'), 'ws-message'),
);
$('logout').addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  showLogin();
});
$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, $('token').value);
  $('token').value = '';
  void refresh();
});

takeTokenFromFragment();
void refresh();
setInterval(() => void refresh(), POLL_MS);
