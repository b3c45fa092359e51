// switchboard dashboard: one EventSource brings snapshots of what changed;
// every view is updated in place (keyed rows, text set only when it differs)
// so nothing jumps while updates arrive.

const $ = (id) => document.getElementById(id);
const state = { teams: [], messages: [], session: null, logs: [], permissions: { pending: [], recent: [] }, skew: 0 };
const open = new Set(); // expanded message ids survive updates

// ---------- small DOM helpers ----------
function h(tag, props = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v);
  }
  for (const k of kids) el.append(k);
  return el;
}
function setText(el, t) { t = t ?? ''; if (el.textContent !== t) el.textContent = t; }
function setAttr(el, k, v) { if (el.getAttribute(k) !== v) el.setAttribute(k, v); }
// keyed renders items into container, reusing the element of each key.
function keyed(container, items, key, create, update) {
  const old = new Map();
  for (const el of container.children) old.set(el.dataset.key, el);
  let prev = null;
  for (const it of items) {
    const k = String(key(it));
    let el = old.get(k);
    if (el) old.delete(k); else { el = create(it); el.dataset.key = k; }
    update(el, it);
    const want = prev ? prev.nextSibling : container.firstChild;
    if (want !== el) container.insertBefore(el, want);
    prev = el;
  }
  for (const el of old.values()) el.remove();
}
function showError(name, msg) { const el = $(name + '-error'); el.hidden = !msg; setText(el, msg ? 'Could not read ' + name + ': ' + msg : ''); }

// ---------- time formatting ----------
const now = () => Date.now() + state.skew;
const isZero = (t) => !t || t.startsWith('0001-');
function dur(ms) {
  if (ms < 0) ms = 0;
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
  const hr = Math.floor(m / 60);
  if (hr < 48) return hr + 'h ' + String(m % 60).padStart(2, '0') + 'm';
  return Math.floor(hr / 24) + 'd ' + (hr % 24) + 'h';
}
function ago(t) { return isZero(t) ? '—' : dur(now() - Date.parse(t)) + ' ago'; }
function clock(t) { return isZero(t) ? '' : new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }); }
function latency(ns) { if (!ns) return '—'; const ms = ns / 1e6; return ms < 1000 ? Math.round(ms) + ' ms' : (ms / 1000).toFixed(1) + ' s'; }
const stateLabel = { stopped: 'stopped', starting: 'starting', idle: 'idle', answering: 'answering', 'waiting-for-permission': 'waiting for permission' };

// ---------- actions ----------
let toastTimer;
function toast(msg, bad) {
  const t = $('toast');
  t.textContent = msg; t.classList.toggle('bad', !!bad); t.classList.add('show');
  clearTimeout(toastTimer); toastTimer = setTimeout(() => t.classList.remove('show'), 3500);
}
async function post(path, body) {
  try {
    const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const j = await r.json().catch(() => ({ error: r.status + ' ' + r.statusText }));
    if (!r.ok || !j.ok) throw new Error(j.error || r.statusText);
    return j;
  } catch (e) { toast(e.message, true); return null; }
}
async function pairAction(action, p, btn) {
  if (action === 'reboot' && !confirm(`Reboot ${p.from} → ${p.to}? Its session starts over.`)) return;
  btn.disabled = true;
  if (await post('/api/pairs/' + action, { from: p.from, to: p.to })) toast(`${action}: ${p.from} → ${p.to}`);
  btn.disabled = false; renderTeams();
}

// ---------- Teams ----------
function pairRow(p) {
  const f = {};
  const el = h('div', { class: 'pair' },
    f.name = h('button', { class: 'pair-name link', title: 'Read this session', onclick: () => { selectPair(el._p.from + '>' + el._p.to); location.hash = '#session'; } }),
    h('span', { class: 'cell state-cell' }, f.state = h('span', { class: 'state' })),
    // .stats is display:contents in the wide grid and one wrapping line when narrow.
    h('span', { class: 'stats' },
      h('span', { class: 'cell num' }, h('span', { class: 'k', text: 'pid ' }), f.pid = h('span')),
      h('span', { class: 'cell num' }, h('span', { class: 'k', text: 'up ' }), f.up = h('span')),
      h('span', { class: 'cell num' }, h('span', { class: 'k', text: 'turns ' }), f.turns = h('span')),
      h('span', { class: 'cell num' }, h('span', { class: 'k', text: 'used ' }), f.used = h('span')),
      h('span', { class: 'cell num' }, h('span', { class: 'k', text: 'queue ' }), f.queue = h('span'))),
    h('span', { class: 'actions' },
      ...['wake', 'sleep', 'cancel', 'reboot'].map((a) => f[a] = h('button', { class: 'btn small', 'data-action': a, text: a[0].toUpperCase() + a.slice(1), onclick: (e) => pairAction(a, el._p, e.currentTarget) }))));
  el._f = f;
  return el;
}
function updatePair(el, p) {
  el._p = p; const f = el._f;
  setText(f.name, p.from + ' → ' + p.to);
  setText(f.state, stateLabel[p.state] || p.state);
  setAttr(f.state, 'data-state', p.state);
  setAttr(el, 'data-state', p.state);
  setText(f.pid, p.pid ? String(p.pid) : '—');
  setText(f.up, isZero(p.startedAt) || p.state === 'stopped' ? '—' : dur(now() - Date.parse(p.startedAt)));
  setText(f.turns, String(p.turns));
  setText(f.used, ago(p.lastUsed));
  setText(f.queue, String(p.queue));
  setAttr(f.queue, 'class', p.queue > 0 ? 'busy' : '');
  const running = p.state === 'answering' || p.state === 'waiting-for-permission';
  f.wake.disabled = p.state !== 'stopped';
  f.sleep.disabled = p.state === 'stopped';
  f.cancel.disabled = !running;
}
function teamCard(t) {
  const f = {};
  const input = h('input', { type: 'text', placeholder: 'Ask ' + t.name + ' as the operator…', 'aria-label': 'Message to ' + t.name });
  const form = h('form', { class: 'send' }, input, h('button', { class: 'btn primary', type: 'submit', text: 'Send' }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value.trim(); if (!text) return;
    const r = await post('/api/send', { to: el._t.name, text });
    if (r) { input.value = ''; toast('Sent to ' + el._t.name + (r.id ? ' (' + r.id + ')' : '')); }
  });
  const el = h('article', { class: 'card team' },
    h('div', { class: 'team-head' },
      f.name = h('h2'),
      f.where = h('span', { class: 'chip' }),
      f.reach = h('span', { class: 'reach' }),
      f.desc = h('p', { class: 'desc' })),
    h('div', { class: 'pairs-head pair' }, ...['Pair', 'State', 'PID', 'Uptime', 'Turns', 'Last used', 'Queue', ''].map((x) => h('span', { text: x }))),
    f.pairs = h('div', { class: 'pairs' }),
    f.nopairs = h('p', { class: 'empty small', text: 'No sessions yet: the first question starts one.' }),
    form);
  el._f = f;
  return el;
}
function updateTeam(el, t) {
  el._t = t; const f = el._f;
  setText(f.name, t.name);
  setText(f.where, t.where === 'local' || !t.where ? 'local' : '⌁ ' + t.where);
  setText(f.reach, t.reachable ? 'reachable' : 'unreachable' + (t.reason ? ': ' + t.reason : ''));
  setAttr(f.reach, 'data-ok', String(!!t.reachable));
  setText(f.desc, t.description || '');
  keyed(f.pairs, t.pairs || [], (p) => p.from + '>' + p.to, pairRow, updatePair);
  f.nopairs.hidden = (t.pairs || []).length > 0;
}
function renderTeams() {
  keyed($('teams'), state.teams, (t) => t.name, teamCard, updateTeam);
  $('teams-empty').hidden = state.teams.length > 0;
  let pairs = 0, busy = 0;
  for (const t of state.teams) for (const p of t.pairs || []) { pairs++; if (p.state === 'answering' || p.state === 'waiting-for-permission') busy++; }
  setText($('teams-summary'), `${state.teams.length} teams · ${pairs} sessions · ${busy} busy now`);
  fillSelect($('m-team'), state.teams.map((t) => t.name), 'all teams');
  fillSelect($('l-team'), state.teams.map((t) => t.name), 'all teams');
  const pairKeys = [];
  for (const t of state.teams) for (const p of t.pairs || []) pairKeys.push(p.from + '>' + p.to);
  fillSelect($('s-pair'), pairKeys, 'choose a pair', (k) => k.replace('>', ' → '));
  sessionMeta();
}
function fillSelect(sel, values, blank, label = (v) => v) {
  const want = ['', ...values];
  const have = [...sel.options].map((o) => o.value);
  if (want.join('\n') === have.join('\n')) return;
  const cur = sel.value;
  sel.replaceChildren(...want.map((v) => h('option', { value: v, text: v ? label(v) : blank })));
  sel.value = want.includes(cur) ? cur : '';
}

// ---------- Messages ----------
function msgRow(m) {
  const f = {};
  const el = h('div', { class: 'msg' },
    f.row = h('button', { class: 'msg-row', 'aria-expanded': 'false', onclick: () => { open.has(el._m.id) ? open.delete(el._m.id) : open.add(el._m.id); updateMsg(el, el._m); } },
      f.time = h('span', { class: 'num' }), f.pair = h('span', { class: 'strong' }), h('span', {}, f.status = h('span', { class: 'status' })),
      f.lat = h('span', { class: 'num' }), f.q = h('span', { class: 'clip' })),
    f.body = h('div', { class: 'msg-body' },
      h('h3', { text: 'Question' }), f.qfull = h('pre'),
      f.ah = h('h3', { text: 'Answer' }), f.afull = h('pre'),
      f.eh = h('h3', { class: 'bad', text: 'Reason' }), f.err = h('pre', { class: 'bad' }),
      f.id = h('p', { class: 'meta' })));
  el._f = f;
  return el;
}
function updateMsg(el, m) {
  el._m = m; const f = el._f;
  setText(f.time, clock(m.created));
  setText(f.pair, m.from + ' → ' + m.to);
  setText(f.status, m.status); setAttr(f.status, 'data-status', m.status);
  setText(f.lat, latency(m.latency));
  setText(f.q, m.error && (m.status === 'failed' || m.status === 'expired' || m.status === 'cancelled') ? m.error : m.question);
  f.q.classList.toggle('bad', !!m.error && m.status !== 'answered');
  const isOpen = open.has(m.id);
  f.body.hidden = !isOpen; setAttr(f.row, 'aria-expanded', String(isOpen));
  setText(f.qfull, m.question);
  f.ah.hidden = f.afull.hidden = !m.answer; setText(f.afull, m.answer);
  f.eh.hidden = f.err.hidden = !m.error; setText(f.err, m.error);
  setText(f.id, 'message ' + m.id);
}
function renderMessages() {
  keyed($('messages'), state.messages, (m) => m.id, msgRow, updateMsg);
  $('messages-empty').hidden = state.messages.length > 0;
}

// ---------- Session ----------
function entryEl() {
  const f = {};
  const el = h('div', { class: 'entry' }, h('div', { class: 'entry-meta' }, f.role = h('span', { class: 'role' }), f.time = h('span', { class: 'num' })), f.text = h('div', { class: 'entry-text' }));
  el._f = f; return el;
}
function updateEntry(el, e) {
  setText(el._f.role, e.role); setAttr(el, 'data-role', e.role);
  setText(el._f.time, clock(e.time)); setText(el._f.text, e.text);
}
function renderSession() {
  const s = state.session;
  const entries = (s && s.entries) || [];
  keyed($('session'), entries, (e) => e.time + '|' + e.role + '|' + e.text.length, entryEl, updateEntry);
  setText($('session-empty'), s ? 'This session has no conversation yet.' : 'Choose a pair to read its conversation.');
  $('session-empty').hidden = entries.length > 0;
  sessionMeta();
}
// sessionMeta names the chosen pair's session and what its process is doing.
function sessionMeta() {
  const k = $('s-pair').value;
  let text = '\u00a0';
  for (const t of state.teams) for (const p of t.pairs || []) {
    if (p.from + '>' + p.to !== k) continue;
    text = `session ${p.sessionId || '(none yet)'} · ${stateLabel[p.state] || p.state} · ${p.turns} turns`;
  }
  setText($('session-meta'), text);
}
function selectPair(k) { const sel = $('s-pair'); if (![...sel.options].some((o) => o.value === k)) sel.append(h('option', { value: k, text: k.replace('>', ' → ') })); sel.value = k; connect(); }

// ---------- Logs ----------
function logEl() {
  const f = {};
  const el = h('div', { class: 'log' }, f.time = h('span', { class: 'num' }), f.level = h('span', { class: 'level' }), f.team = h('span', { class: 'team-name' }), f.msg = h('span', { class: 'clip' }));
  el._f = f; return el;
}
function updateLog(el, l) {
  const f = el._f;
  setText(f.time, clock(l.time)); setText(f.level, l.level); setAttr(f.level, 'data-level', l.level);
  setText(f.team, l.team || '');
  const attrs = Object.entries(l.attrs || {}).map(([k, v]) => k + '=' + v).join(' ');
  setText(f.msg, l.message + (attrs ? '  ' + attrs : '')); setAttr(f.msg, 'title', l.message + (attrs ? '\n' + attrs : ''));
}
function renderLogs() {
  keyed($('logs'), state.logs, (l) => l.time + '|' + l.message + '|' + (l.team || ''), logEl, updateLog);
  $('logs-empty').hidden = state.logs.length > 0;
}

// ---------- Permissions ----------
function pendingCard() {
  const f = {};
  const decide = async (allow, btn) => {
    btn.disabled = true;
    const r = await post('/api/decide', { id: el._r.id, allow });
    if (r) toast((allow ? 'Approved ' : 'Denied ') + el._r.tool + ' for ' + el._r.team); else btn.disabled = false;
  };
  const el = h('article', { class: 'card perm' },
    h('div', { class: 'perm-head' }, f.tool = h('span', { class: 'tool' }), f.who = h('span', { class: 'who' }), f.count = h('span', { class: 'countdown num' })),
    f.bar = h('div', { class: 'bar' }, f.fill = h('span')),
    f.input = h('pre', { class: 'input' }),
    h('div', { class: 'perm-foot' }, f.meta = h('span', { class: 'meta' }),
      h('span', { class: 'actions' },
        f.deny = h('button', { class: 'btn danger', 'data-action': 'deny', text: 'Deny', onclick: (e) => decide(false, e.currentTarget) }),
        f.approve = h('button', { class: 'btn primary', 'data-action': 'approve', text: 'Approve', onclick: (e) => decide(true, e.currentTarget) }))));
  el._f = f; return el;
}
function updatePending(el, r) {
  el._r = r; const f = el._f;
  setText(f.tool, r.tool);
  setText(f.who, r.team + ' · ' + r.from + ' → ' + r.to);
  setText(f.input, r.input);
  setText(f.meta, 'message ' + r.messageId + ' · asked ' + ago(r.created));
  tickPending(el);
}
function tickPending(el) {
  const r = el._r, f = el._f;
  const left = Date.parse(r.deadline) - now(), total = Date.parse(r.deadline) - Date.parse(r.created);
  setText(f.count, left > 0 ? 'denies in ' + dur(left) : 'timing out…');
  f.fill.style.width = (total > 0 ? Math.max(0, Math.min(100, (100 * left) / total)) : 0).toFixed(1) + '%';
  el.classList.toggle('urgent', left < 30000);
  setText(f.meta, 'message ' + r.messageId + ' · asked ' + ago(r.created));
}
function decRow() {
  const f = {};
  const el = h('div', { class: 'dec-row' }, f.time = h('span', { class: 'num' }), f.team = h('span', { class: 'strong' }), f.tool = h('span'), h('span', {}, f.dec = h('span', { class: 'status' })), f.by = h('span'), f.reason = h('span', { class: 'clip' }));
  el._f = f; return el;
}
function updateDec(el, d) {
  const f = el._f;
  setText(f.time, clock(d.decided)); setText(f.team, d.team); setText(f.tool, d.tool);
  setText(f.dec, d.allow ? 'allowed' : 'denied'); setAttr(f.dec, 'data-status', d.allow ? 'answered' : 'failed');
  setText(f.by, d.decidedBy); setText(f.reason, d.reason || ''); setAttr(f.reason, 'title', d.reason || '');
}
function renderPermissions() {
  const p = state.permissions || { pending: [], recent: [] };
  const pending = p.pending || [], recent = p.recent || [];
  keyed($('pending'), pending, (r) => r.id, pendingCard, updatePending);
  keyed($('recent'), recent, (d) => d.id, decRow, updateDec);
  $('pending-empty').hidden = pending.length > 0;
  $('recent-empty').hidden = recent.length > 0;
  const c = $('perm-count'); c.hidden = pending.length === 0; setText(c, String(pending.length));
  // A background tab shows that someone is waiting for a decision.
  const title = pending.length ? `(${pending.length}) switchboard` : 'switchboard';
  if (document.title !== title) document.title = title;
}

// ---------- live updates ----------
const renderers = { teams: renderTeams, messages: renderMessages, session: renderSession, logs: renderLogs, permissions: renderPermissions };
let es;
function conn(s, label) { const c = $('conn'); setAttr(c, 'data-state', s); setText(c.querySelector('.label'), label); }
function connect() {
  if (es) es.close();
  const [sfrom, sto] = ($('s-pair').value || '>').split('>');
  const q = new URLSearchParams({ mteam: $('m-team').value, mstatus: $('m-status').value, sfrom, sto, lteam: $('l-team').value, llevel: $('l-level').value });
  es = new EventSource('/events?' + q);
  conn('connecting', 'connecting');
  es.addEventListener('open', () => conn('live', 'live'));
  es.addEventListener('snapshot', (ev) => {
    const snap = JSON.parse(ev.data);
    if (snap.now) state.skew = Date.parse(snap.now) - Date.now();
    for (const [name, render] of Object.entries(renderers)) {
      if (!(name in snap)) continue;
      const sec = snap[name];
      showError(name, sec.error);
      if (sec.error) continue;
      state[name] = sec.data ?? (name === 'permissions' ? { pending: [], recent: [] } : name === 'session' ? null : []);
      render();
    }
    document.body.dataset.ready = '1';
    conn('live', 'live');
  });
  es.addEventListener('error', () => {
    if (es.readyState === EventSource.CLOSED) conn('down', 'disconnected: run switchboard dashboard');
    else conn('connecting', 'reconnecting');
  });
}
for (const id of ['m-team', 'm-status', 's-pair', 'l-team', 'l-level']) $(id).addEventListener('change', connect);

// Uptimes, "ago" and countdowns move every second without a new snapshot.
setInterval(() => {
  for (const el of $('teams').querySelectorAll('.pair[data-key]')) updatePair(el, el._p);
  for (const el of $('pending').children) tickPending(el);
}, 1000);

// ---------- tabs ----------
function route() {
  const tab = (location.hash || '#teams').slice(1);
  for (const v of document.querySelectorAll('.view')) v.hidden = v.dataset.view !== tab;
  for (const a of document.querySelectorAll('.tabs a')) a.setAttribute('aria-selected', String(a.dataset.tab === tab));
}
addEventListener('hashchange', route);
route();
connect();
