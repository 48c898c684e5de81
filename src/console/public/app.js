// The fleetkey console: a hash-routed single page over the server's /v1 API. Reads use the bearer
// token the user signs in with (an operator token, or the admin token); every change of state is a
// document signed in the browser with a passkey and checked by the server and every signer.
import { h, table, field } from './dom.js';
import { savedPasskeys, registerPasskey, signApproval, signControlDoc, passkeySession } from './passkey.js';

const TOKEN = 'fleetkey.token';
const PAGE = 50;
const main = document.getElementById('main');
const nav = document.getElementById('nav');

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, { text = false } = {}) {
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${sessionStorage.getItem(TOKEN) ?? ''}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const raw = await res.text();
  if (!res.ok) {
    let e = {};
    try {
      e = JSON.parse(raw).error ?? {};
    } catch {}
    throw new ApiError(res.status, e.code ?? `http_${res.status}`, e.message ?? res.statusText);
  }
  return text ? raw : raw ? JSON.parse(raw) : undefined;
}

const errorBox = (e) => h('p', { class: 'error', role: 'alert' }, e instanceof ApiError ? `${e.code}: ${e.message}` : String(e?.message ?? e));
const status = (s) => h('span', { class: `status status-${s}` }, s);
const link = (href, text) => h('a', { href }, text);
/** A fleet's device counts by status, in words. */
const counts = (d) => (d && typeof d === 'object' ? Object.entries(d).map(([k, v]) => `${k}: ${v}`).join(', ') : String(d ?? ''));
const when = (ms) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');

/** Replaces the page with `title` and the nodes `build` answers; an error is shown in place of a blank page. */
async function page(title, build) {
  // A screen still loading when another is asked for must not replace it when its answers come in
  // (a slow overview used to land on top of the passkeys screen opened after it).
  const mine = ++shown;
  document.title = `${title} · fleetkey`;
  const out = h('section', { 'aria-labelledby': 'page-title' }, h('h1', { id: 'page-title' }, title));
  main.replaceChildren(out, h('p', { class: 'muted', 'aria-live': 'polite' }, 'Loading…'));
  try {
    const nodes = [await build()].flat();
    if (mine !== shown) return;
    out.append(...nodes);
    main.replaceChildren(out);
  } catch (e) {
    if (mine !== shown) return;
    if (e instanceof ApiError && e.status === 401) return signIn(e);
    main.replaceChildren(out, errorBox(e));
  }
  main.dataset.ready = location.hash;
}
/** How many screens have been asked for: the last one asked for is the one shown. */
let shown = 0;

/** An action button: runs `fn`, shows its error or its result beside it. */
function action(label, fn, attrs = {}) {
  const note = h('span', { class: 'note', role: 'status' });
  const b = h('button', {
    type: 'button',
    ...attrs,
    onclick: async () => {
      b.disabled = true;
      note.replaceChildren('Working…');
      try {
        note.replaceChildren(String((await fn()) ?? 'Done'));
        note.className = 'note ok';
      } catch (e) {
        note.replaceChildren(errorBox(e));
        note.className = 'note';
      } finally {
        b.disabled = false;
      }
    },
  }, label);
  return h('span', { class: 'action' }, b, note);
}

/** A select of this browser's passkeys; the chosen one signs. */
function passkeyPicker(id, label) {
  const keys = savedPasskeys();
  const sel = h('select', { id, name: id }, keys.map((k) => h('option', { value: k.name }, `${k.name} (${k.key.publicKey.slice(0, 12)}…)`)));
  const get = () => {
    const k = keys.find((x) => x.name === sel.value);
    if (!k) throw new Error('no passkey registered in this browser: register one under Passkeys first');
    return k;
  };
  return { el: field(label, sel), get };
}

// ---------------------------------------------------------------------------------------------
// Screens

function signIn(err) {
  shown++;
  document.title = 'Sign in · fleetkey';
  nav.hidden = true;
  const enter = (token) => {
    sessionStorage.setItem(TOKEN, token);
    nav.hidden = false;
    location.hash = '#/overview';
    route();
  };
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', {
    onsubmit: (ev) => {
      ev.preventDefault();
      enter(input.value.trim());
    },
  }, field('Operator token', input), h('button', { type: 'submit' }, 'Sign in'));
  // A passkey registered in the owner keys or the approver registry opens a short read session
  // (an owner passkey's session may also submit owner-signed documents).
  const keys = savedPasskeys();
  const out = h('div', { 'aria-live': 'polite' });
  const sel = h('select', { id: 'signin-passkey', name: 'signin-passkey' }, keys.map((k) => h('option', { value: k.name }, k.name)));
  const withPasskey = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const s = await passkeySession(keys.find((k) => k.name === sel.value), (path, body) => api('POST', path, body));
        enter(s.token);
      } catch (e) {
        out.replaceChildren(errorBox(e));
      }
    },
  }, field('Passkey', sel), h('button', { type: 'submit' }, 'Sign in with a passkey'));
  main.replaceChildren(h('section', { 'aria-labelledby': 'page-title' }, h('h1', { id: 'page-title' }, 'Sign in'), err ? errorBox(err) : '',
    h('p', {}, 'A viewer token reads; an operator token also enrols devices and creates wallets. Approving, rejecting and revoking take a passkey registered in the approver registry or the owner keys.'),
    form, keys.length ? withPasskey : '', out));
  main.dataset.ready = '#/signin';
}

/** Prometheus text: the sum of a series' samples over every label set. */
function metricSum(text, name) {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && (line[name.length] === '{' || line[name.length] === ' ')) sum += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  return sum;
}
let lastSample;

const overview = () =>
  page('Overview', async () => {
    const [nodes, approvals, metrics] = await Promise.all([api('GET', '/v1/nodes'), api('GET', '/v1/approvals'), api('GET', '/metrics', undefined, { text: true }).catch((e) => e)]);
    const up = nodes.filter((n) => n.status === 'up').length;
    const out = [
      h('p', { class: 'kpis' }, h('span', {}, `Signer nodes up: ${up} of ${nodes.length}`), h('span', {}, link('#/approvals', `Pending approvals: ${approvals.requests.length}`))),
      table('Signer nodes', ['Node', 'Status', 'URL'], nodes.map((n) => [n.id, status(n.status), n.url])),
    ];
    if (metrics instanceof Error) out.push(h('p', { class: 'muted' }, `Signing metrics: ${metrics.message}`));
    else {
      const count = metricSum(metrics, 'fleetkey_sign_seconds_count');
      const seconds = metricSum(metrics, 'fleetkey_sign_seconds_sum');
      const now = Date.now();
      const rate = lastSample && now > lastSample.at ? ((count - lastSample.count) * 1000) / (now - lastSample.at) : undefined;
      lastSample = { at: now, count };
      out.push(table('Signing', ['Signatures since start', 'Mean latency', 'Rate since last view'], [[String(count), count ? `${((seconds / count) * 1000).toFixed(0)} ms` : '–', rate === undefined ? '–' : `${rate.toFixed(2)} /s`]]));
    }
    return out;
  });

const wallets = (after = '') =>
  page('Wallets and fleets', async () => {
    const [w, f] = await Promise.all([api('GET', `/v1/wallets?limit=${PAGE}${after ? `&after=${encodeURIComponent(after)}` : ''}`), api('GET', '/v1/fleets?limit=100')]);
    const q = h('input', { id: 'wallet-search', type: 'search', name: 'q' });
    const body = h('tbody');
    const render = () => {
      const s = q.value.trim().toLowerCase();
      body.replaceChildren(...w.wallets.filter((x) => !s || [x.id, x.address, x.label ?? ''].some((v) => v.toLowerCase().includes(s))).map((x) => h('tr', {}, h('td', {}, link(`#/wallet/${x.id}`, x.id)), h('td', {}, x.label ?? ''), h('td', {}, x.scheme), h('td', { class: 'mono' }, x.address))));
    };
    q.addEventListener('input', render);
    render();
    return [
      field('Search wallets (id, address, label)', q),
      h('table', {}, h('caption', {}, 'Wallets'), h('thead', {}, h('tr', {}, ['Wallet', 'Label', 'Scheme', 'Address'].map((x) => h('th', { scope: 'col' }, x)))), body),
      w.next ? h('p', {}, h('button', { type: 'button', onclick: () => wallets(w.next) }, 'Next page')) : '',
      table('Fleets', ['Fleet', 'Label', 'Scheme', 'Devices'], f.fleets.map((x) => [link(`#/fleet/${x.id}`, x.id), x.label ?? '', x.scheme, `${x.nextIndex} enrolled`])),
    ];
  });

const fleet = (id) =>
  page(`Fleet ${id}`, async () => {
    const f = await api('GET', `/v1/fleets/${encodeURIComponent(id)}`);
    const base = `/v1/fleets/${encodeURIComponent(id)}/devices`;
    const body = h('tbody');
    const where = h('p', { class: 'muted', role: 'status' });
    const trail = [];
    let next = null;
    const show = (devices, text) => {
      body.replaceChildren(...devices.map((d) => h('tr', {}, h('td', {}, String(d.index)), h('td', {}, status(d.status)), h('td', { class: 'mono' }, d.address), h('td', { class: 'mono' }, d.did), h('td', { class: 'mono' }, d.deviceDid ?? ''))));
      where.replaceChildren(text);
    };
    const load = async (after) => {
      const r = await api('GET', `${base}?limit=${PAGE}${after === undefined ? '' : `&after=${after}`}`);
      next = r.next;
      const first = r.devices[0]?.index;
      show(r.devices, r.devices.length ? `Devices ${first} to ${r.devices.at(-1).index}` : 'No devices');
    };
    const q = h('input', { id: 'device-search', name: 'device', type: 'search' });
    const search = async (ev) => {
      ev.preventDefault();
      const s = q.value.trim();
      try {
        const d = /^\d+$/.test(s) ? await api('GET', `${base}/${s}`) : await api('GET', `${base}/by-did/${encodeURIComponent(s)}`);
        show([d], `Device ${d.index}`);
      } catch (e) {
        show([], '');
        where.replaceChildren(errorBox(e));
      }
    };
    await load();
    return [
      table('Fleet', ['Scheme', 'Label', 'Public key', 'Devices'], [[f.scheme, f.label ?? '', h('span', { class: 'mono' }, f.publicKey ?? ''), counts(f.devices)]]),
      h('form', { onsubmit: search, class: 'inline' }, field('Find a device (index or device DID)', q), h('button', { type: 'submit' }, 'Find')),
      where,
      h('table', {}, h('caption', {}, 'Devices'), h('thead', {}, h('tr', {}, ['Index', 'Status', 'Address', 'Wallet DID', 'Device DID'].map((x) => h('th', { scope: 'col' }, x)))), body),
      h('p', {}, h('button', { type: 'button', onclick: () => (trail.length ? (trail.pop(), load(trail.at(-1))) : load()) }, 'Previous page'), ' ', h('button', { type: 'button', id: 'next-page', onclick: () => next !== null && (trail.push(next), load(next)) }, 'Next page')),
    ];
  });

/** A line diff of two JSON texts (longest common subsequence), for policy versions. */
function diffLines(a, b) {
  const x = a.split('\n');
  const y = b.split('\n');
  const m = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1));
  for (let i = x.length - 1; i >= 0; i--) for (let j = y.length - 1; j >= 0; j--) m[i][j] = x[i] === y[j] ? m[i + 1][j + 1] + 1 : Math.max(m[i + 1][j], m[i][j + 1]);
  const out = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) out.push(['same', x[i++], j++]);
    else if (j < y.length && (i === x.length || m[i][j + 1] >= m[i + 1][j])) out.push(['add', y[j++]]);
    else out.push(['del', x[i++]]);
  }
  return out.map(([k, line]) => h('div', { class: `diff-${k}` }, `${k === 'add' ? '+ ' : k === 'del' ? '- ' : '  '}${line}`));
}

const wallet = (id) =>
  page(`Wallet ${id}`, async () => {
    const [w, c, audit] = await Promise.all([api('GET', `/v1/wallets/${encodeURIComponent(id)}`), api('GET', `/v1/console/wallets/${encodeURIComponent(id)}`), api('GET', `/v1/console/audit?limit=10&wallet=${encodeURIComponent(id)}`)]);
    const latest = c.policies.at(-1);
    const recent = audit.entries.filter((e) => e.walletId === id || e.data?.walletId === id);
    return [
      table('Wallet', ['Scheme', 'Network', 'Threshold', 'Epoch', 'Policy version'], [[w.scheme, w.network ?? '', `${w.threshold} of ${w.signers}`, String(w.epoch), latest ? String(latest.version) : 'none']]),
      table('Addresses', ['Chain', 'Address', 'Public key'], [[w.scheme === 'ed25519' ? 'Solana' : w.scheme === 'ecdsa-secp256k1' ? 'Ethereum (EVM)' : 'Bitcoin (taproot)', h('span', { class: 'mono' }, w.address), h('span', { class: 'mono' }, w.publicKey)]]),
      c.limits ? table('Rolling limits', ['Rule', 'Window', 'Used / limit'], c.limits.limits.map((l) => [l.rule, l.window, l.used === undefined ? `limit ${l.max}` : `${l.used} / ${l.max}`])) : h('p', {}, 'No policy: agents cannot sign with this wallet.'),
      h('p', {}, link(`#/policy/${id}`, 'Policy, history and simulator')),
      table('Recent requests', ['Seq', 'Time', 'Type', 'Outcome', 'Request'], recent.map((e) => [String(e.seq), e.time ?? '', e.type, e.outcome ?? '', e.data?.requestId ?? e.requestId ?? ''])),
    ];
  });

const policy = (id) =>
  page(`Policy of ${id}`, async () => {
    const c = await api('GET', `/v1/console/wallets/${encodeURIComponent(id)}`);
    if (!c.policies.length) return h('p', {}, 'This wallet has no policy.');
    const pretty = (v) => JSON.stringify(v, null, 2);
    const versions = c.policies.map((p) => String(p.version));
    const from = h('select', { id: 'diff-from', name: 'from' }, versions.map((v) => h('option', { value: v }, v)));
    const to = h('select', { id: 'diff-to', name: 'to' }, versions.map((v) => h('option', { value: v }, v)));
    from.value = versions.at(-2) ?? versions[0];
    to.value = versions.at(-1);
    const diff = h('pre', { class: 'diff', 'aria-label': 'Differences', tabindex: 0 });
    const byVersion = (v) => c.policies.find((p) => String(p.version) === v).policy;
    const render = () => diff.replaceChildren(...diffLines(pretty(byVersion(from.value)), pretty(byVersion(to.value))));
    from.addEventListener('change', render);
    to.addEventListener('change', render);
    render();
    const kind = h('select', { id: 'sim-kind', name: 'kind' }, ['solana_transaction', 'evm_transaction', 'evm_message', 'evm_typed_data', 'solana_message', 'bitcoin_psbt', 'bitcoin_message'].map((k) => h('option', { value: k }, k)));
    const net = h('input', { id: 'sim-chain', name: 'chain', placeholder: '1, 8453, mainnet-beta, testnet' });
    const payload = h('textarea', { id: 'sim-payload', name: 'payload', rows: 4 });
    const result = h('div', { id: 'sim-result', 'aria-live': 'polite' });
    const simulate = async (ev) => {
      ev.preventDefault();
      try {
        const raw = payload.value.trim();
        const r = await api('POST', '/v1/policy/simulate', { policy: byVersion(to.value), kind: kind.value, payload: /^[[{]/.test(raw) ? JSON.parse(raw) : raw, ...(net.value.trim() ? { chainId: net.value.trim() } : {}) });
        result.replaceChildren(h('p', {}, h('strong', {}, `Decision: ${r.decision.outcome}`)), h('p', {}, r.words), h('ul', {}, r.decision.reasons.map((x) => h('li', {}, `${x.rule}: ${x.message}`))), h('pre', { tabindex: 0 }, r.explanation));
      } catch (e) {
        result.replaceChildren(errorBox(e));
      }
    };
    return [
      h('h2', {}, `Version ${versions.at(-1)} (latest)`),
      h('pre', { class: 'json', tabindex: 0 }, pretty(c.policies.at(-1).policy)),
      h('h2', {}, 'Changes between versions'),
      h('p', { class: 'inline' }, field('From', from), field('To', to)),
      diff,
      h('h2', {}, 'Simulator'),
      h('form', { onsubmit: simulate }, field('Payload kind', kind), field('Chain id or network', net), field('Payload (hex, base64 or JSON)', payload), h('button', { type: 'submit' }, 'Simulate')),
      result,
    ];
  });

const grants = () =>
  page('Grants', async () => {
    const [r, me] = await Promise.all([api('GET', '/v1/grants'), whoami()]);
    // Revoking posts an owner-signed document: offered to the admin token and owner passkey sessions only (the route refuses the rest).
    const mayRevoke = me?.owner === true;
    const owner = passkeyPicker('owner-passkey', 'Owner passkey');
    return [
      mayRevoke ? owner.el : h('p', { class: 'muted' }, 'Revoking a grant takes the owner: sign in with the admin token or an owner passkey.'),
      table('Grants', ['Grant', 'Agent', 'Wallets', 'Expires', 'Uses', 'Status', ''], r.grants.map((g) => [
        g.id,
        h('span', { class: 'mono' }, `${g.agent.keyType} ${g.agent.publicKey.slice(0, 16)}…`),
        g.wallets.join(', '),
        when(g.expiresAt),
        `${g.uses}${g.maxUses ? ` / ${g.maxUses}` : ''}`,
        status(g.status),
        g.status === 'active' && mayRevoke ? action(`Revoke ${g.id}`, async () => {
          const r = await api('POST', '/v1/control', await signControlDoc(owner.get(), { kind: 'revocation', grantId: g.id, issuedAt: Date.now() }));
          return `Revoked: delivered to ${r.delivered.length} signer(s)${r.pending.length ? `, ${r.pending.length} pending` : ''}`;
        }) : '',
      ])),
    ];
  });

const approvals = () =>
  page('Approvals', async () => {
    const r = await api('GET', '/v1/console/approvals');
    const me = passkeyPicker('approver-passkey', 'Approve as');
    if (!r.requests.length) return [me.el, h('p', {}, 'No request is waiting for approval.')];
    const decide = (q, decision) => async () => {
      const res = await api('POST', `/v1/approvals/${encodeURIComponent(q.requestId)}`, await signApproval(me.get(), q.requestDigest, decision));
      return `Now ${res.status}`;
    };
    return [
      me.el,
      ...r.requests.map((q) =>
        h('article', { class: 'card', 'aria-label': `Request ${q.requestId}` },
          h('h2', {}, q.words ?? `Undecodable request: ${q.error}`),
          table(`Request ${q.requestId}`, ['Wallet', 'Agent grant', 'Rule asking', 'Approvals', 'Expires'], [[q.walletId, q.grantId ?? '', (q.approvals ?? []).map((a) => `${a.rule} (${a.required} of ${a.approvers.join(', ')})`).join('; '), (q.approvedBy ?? []).join(', ') || 'none yet', q.expiresAt]]),
          q.action ? table('What it does', ['Chain', 'Asset', 'Amount (base units)', 'Recipient'], q.action.effects.map((e) => [`${q.action.chain} ${q.action.chainId ?? ''}`, e.asset, e.amount, e.to ?? e.spender])) : '',
          h('p', { class: 'mono muted' }, `Request digest ${q.requestDigest}`),
          h('p', {}, action(`Approve ${q.requestId}`, decide(q, 'approve'), { class: 'approve' }), ' ', action(`Reject ${q.requestId}`, decide(q, 'reject'), { class: 'reject' })),
        ),
      ),
    ];
  });

/** Every entry of the chain as JSON lines, downloaded as a file (the one read of the whole chain, on request). */
async function exportAudit(ev) {
  ev.preventDefault();
  const text = await api('GET', '/v1/audit?checkpoint=false', undefined, { text: true });
  const url = URL.createObjectURL(new Blob([text], { type: 'application/x-ndjson' }));
  h('a', { href: url, download: 'fleetkey-audit.jsonl' }).click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

const audit = () =>
  page('Audit log', async () => {
    const v = await api('GET', '/v1/audit/verify');
    const f = { wallet: h('input', { id: 'f-wallet', name: 'wallet', type: 'search' }), agent: h('input', { id: 'f-agent', name: 'agent', type: 'search' }), outcome: h('input', { id: 'f-outcome', name: 'outcome', type: 'search' }) };
    const body = h('tbody');
    const info = h('p', { class: 'muted', role: 'status' });
    // Pages come from the server, newest first: `before` is this page's cursor, `seen` the cursors of the newer pages.
    let before;
    let next = null;
    const seen = [];
    const newer = h('button', { type: 'button', onclick: () => ((before = seen.pop()), load()) }, 'Newer');
    const older = h('button', { type: 'button', onclick: () => (seen.push(before), (before = next), load()) }, 'Older');
    let asked = 0;
    const load = async () => {
      const mine = ++asked;
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (before !== undefined) q.set('before', String(before));
      for (const [k, el] of Object.entries(f)) if (el.value.trim()) q.set(k, el.value.trim());
      try {
        const r = await api('GET', `/v1/console/audit?${q}`);
        if (mine !== asked) return;
        next = r.next;
        body.replaceChildren(...r.entries.map((e) => h('tr', {}, [String(e.seq), e.time ?? '', e.type, e.outcome ?? '', e.walletId ?? e.data?.walletId ?? '', e.data?.requestId ?? '', e.data?.approver ?? ''].map((x) => h('td', {}, x)))));
        info.replaceChildren(`${r.entries.length} entries match on this page${next === null ? '' : '; older entries may match too'}`);
      } catch (e) {
        if (mine === asked) info.replaceChildren(errorBox(e));
      }
      older.disabled = next === null;
      newer.disabled = !seen.length;
    };
    let typing;
    for (const i of Object.values(f))
      i.addEventListener('input', () => {
        clearTimeout(typing);
        typing = setTimeout(() => ((before = undefined), (seen.length = 0), load()), 200);
      });
    await load();
    return [
      h('p', { id: 'chain-status', class: v.ok ? 'ok' : 'error' }, v.ok ? `Chain verifies: ${v.entries} entries, sealed through seq ${v.sealedThrough} by ${v.checkpoints} checkpoint(s)` : `Chain BROKEN at line ${v.firstBroken?.line}: ${v.firstBroken?.reason}`),
      h('p', {}, h('a', { href: '#/audit', onclick: exportAudit }, 'Export (JSON lines)')),
      h('div', { class: 'inline' }, field('Wallet', f.wallet), field('Agent or grant', f.agent), field('Outcome', f.outcome)),
      info,
      h('table', {}, h('caption', {}, 'Entries, newest first'), h('thead', {}, h('tr', {}, ['Seq', 'Time', 'Type', 'Outcome', 'Wallet', 'Request', 'Approver'].map((x) => h('th', { scope: 'col' }, x)))), body),
      h('p', {}, newer, ' ', older),
    ];
  });

const passkeys = () =>
  page('Passkeys', async () => {
    const name = h('input', { id: 'passkey-name', name: 'name', required: true, pattern: '[A-Za-z0-9_.\\-]{1,64}' });
    const out = h('div', { 'aria-live': 'polite' });
    const list = () => table('Passkeys in this browser', ['Name', 'Key object (to pin in the approver registry or the owner keys)'], savedPasskeys().map((p) => [p.name, h('code', { class: 'mono' }, JSON.stringify(p.key))]));
    const holder = h('div', {}, list());
    const register = async (ev) => {
      ev.preventDefault();
      try {
        const p = await registerPasskey(name.value.trim());
        out.replaceChildren(h('p', { class: 'ok' }, `Registered ${p.name}. The owner pins its key object to make it an approver or owner key.`));
        holder.replaceChildren(list());
      } catch (e) {
        out.replaceChildren(errorBox(e));
      }
    };
    return [h('form', { onsubmit: register }, field('Name (the approver id)', name), h('button', { type: 'submit' }, 'Register a passkey')), out, holder];
  });

// ---------------------------------------------------------------------------------------------

const routes = { overview, wallets, wallet, fleet, policy, grants, approvals, audit, passkeys };

let who;
/** Who is signed in (asked once per token): the admin, an operator token or a passkey session, and its role. */
function whoami() {
  const t = sessionStorage.getItem(TOKEN);
  if (who?.token !== t) who = { token: t, answer: api('GET', '/v1/console/whoami').catch(() => undefined) };
  return who.answer;
}
async function showWho() {
  const w = await whoami();
  const el = document.getElementById('who');
  if (el) el.replaceChildren(!w ? '' : w.kind === 'admin' ? 'Signed in: admin token' : `Signed in: ${w.kind === 'passkey_session' ? `passkey ${w.id}` : `token ${w.id}`} (${w.role}${w.kind === 'passkey_session' && w.owner ? ', owner documents' : ''})`);
}

function route() {
  if (!sessionStorage.getItem(TOKEN)) return signIn();
  nav.hidden = false;
  void showWho();
  const [, name = 'overview', arg] = location.hash.split('/');
  for (const a of nav.querySelectorAll('a')) a.toggleAttribute('aria-current', a.getAttribute('href') === `#/${name}`);
  const screen = routes[name] ?? overview;
  return arg === undefined ? screen() : screen(decodeURIComponent(arg));
}

document.getElementById('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN);
  who = undefined;
  signIn();
});
window.addEventListener('hashchange', route);
route();
