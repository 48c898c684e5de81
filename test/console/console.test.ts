/**
 * The web console in a real browser: Debian's Chromium driven by playwright-core, headless, every
 * request to anything but 127.0.0.1 aborted, against a real LocalCluster (3 signer processes). A
 * virtual WebAuthn authenticator (Chromium's DevTools `WebAuthn` domain, user verification on)
 * stands in for the security key. Each screen is checked for what it must show, screenshotted (the
 * folder is printed), and run through axe-core (no serious or critical violation); the page must
 * log no error, so a Content-Security-Policy violation fails the test.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { bytesToHex } from '@noble/hashes/utils.js';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { p256 } from '@noble/curves/nist.js';
import { chromium, type Browser, type CDPSession, type Page } from 'playwright-core';
import { canonicalJson } from '../../src/audit/canonical.ts';
import type { LocalCluster } from '../../src/cli/cluster.ts';
import { CONSOLE_CSP } from '../../src/console/routes.ts';
import { digestOf, DOMAINS } from '../../src/control/keys.ts';
import { decode } from '../../src/chains/index.ts';
import { api, call, startCluster, verifySig } from '../helpers/cluster.ts';
import { grant, newAgent, publish, request, SOL_ASSETS, SOL_DEST, solTransfer, type Agent } from '../helpers/agent.ts';
import { makeKey } from '../identity/fixtures.ts';
import { newOperatorToken, signOperatorDoc } from '../../src/control/operators.ts';
import { readOwnerSecret } from '../../src/control/owner.ts';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const SHOTS = mkdtempSync(join(tmpdir(), 'fleetkey-console-'));
const DEVICES = 100_000;

describe('web console in Chromium against a 3-signer cluster', { timeout: 600_000 }, () => {
  let c: LocalCluster;
  let A: ReturnType<typeof api>;
  let browser: Browser;
  let page: Page;
  let cdp: CDPSession;
  let authenticatorId: string;
  let base: string;
  let wallet: { id: string; address: string; publicKey: string };
  let fleetId: string;
  let deviceDid: string;
  let agent: Agent;
  let grantId: string;
  const pageErrors: string[] = [];
  const blocked: string[] = [];

  /** Opens a screen and waits until it has rendered (the app marks main[data-ready] with the route). */
  async function open(hash: string) {
    // The same hash again fires no hashchange, so the screen would stay as it was: ask for a fresh render.
    await page.evaluate((h) => {
      if (location.hash !== h) return void (location.hash = h);
      delete document.getElementById('main')!.dataset.ready;
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    }, hash);
    await ready(hash);
  }
  /** Requests the page has sent and not yet seen answered, with when they left: what a screen that never renders waits on. */
  const inFlight = new Map<object, { url: string; at: number }>();
  /**
   * Waits until the app marks main[data-ready] with `hash`. On a timeout the error says what the page
   * showed and which of its requests were still unanswered (CI once saw the screens after sign-in
   * never render on a loaded machine, with nothing else to go on).
   */
  async function ready(hash: string, timeout = 60_000) {
    try {
      await page.waitForFunction((h) => document.getElementById('main')?.dataset.ready === h, hash, { timeout });
    } catch (e) {
      const shown = await page.evaluate(() => `${location.hash} ready=${document.getElementById('main')?.dataset.ready}: ${document.getElementById('main')?.innerText.slice(0, 500)}`).catch((x) => String(x));
      const pending = [...inFlight.values()].map((r) => `${r.url} (${Math.round(performance.now() - r.at)} ms)`);
      throw new Error(`${hash} did not render: page shows ${JSON.stringify(shown)}; unanswered requests: ${pending.join(', ') || 'none'}; page errors: ${pageErrors.join(' | ') || 'none'}`, { cause: e });
    }
  }

  /** Screenshot, then axe-core: no serious or critical violation on the screen as shown. */
  async function check(name: string) {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
    if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE);
    const r = await page.evaluate(() => (window as any).axe.run(document, { resultTypes: ['violations'] }));
    const bad = r.violations.filter((v: { impact: string }) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(bad.map((v: { id: string; nodes: { target: string[] }[] }) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), [], `${name}: accessibility`);
  }

  before(async () => {
    c = await startCluster(3);
    A = api(c);
    // WebAuthn wants a domain, not an IP: the browser says localhost, which it resolves to 127.0.0.1 only.
    base = c.info.url.replace('//127.0.0.1:', '//localhost:');
    const w = await A('POST', '/v1/wallets', { scheme: 'ed25519', threshold: 2, signers: 3, label: 'treasury', network: 'mainnet-beta' });
    assert.equal(w.status, 201, JSON.stringify(w.body));
    wallet = w.body;
    const rules = [{ id: 'allow-sol', type: 'allow', chainIds: ['mainnet-beta'], to: [SOL_DEST] }, { id: 'daily', type: 'window_cap', asset: 'SOL', max: '5000000000', window: '24h' }];
    for (const [version, extra] of [[1, []], [2, [{ id: 'big', type: 'require_approval', asset: 'SOL', above: '100000000', m: 1, approvers: ['alice', 'bob'] }]]] as const) {
      const r = await publish(c, { kind: 'policy', walletId: wallet.id, version, policy: { version, assets: SOL_ASSETS, rules: [...rules, ...extra] }, issuedAt: Date.now() });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    agent = newAgent();
    grantId = await grant(c, agent, [wallet.id]);
    const f = await A('POST', '/v1/fleets', { scheme: 'ed25519', label: 'meters' });
    assert.equal(f.status, 201, JSON.stringify(f.body));
    fleetId = f.body.id;
    const t0 = performance.now();
    const b = await A('POST', `/v1/fleets/${fleetId}/devices/batch`, { count: DEVICES });
    assert.equal(b.status, 201, JSON.stringify(b.body));
    console.log(`enrolled ${DEVICES} devices in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    deviceDid = makeKey('Ed25519').did;
    assert.equal((await A('POST', `/v1/fleets/${fleetId}/devices`, { deviceDid })).status, 201);

    // Chromium's own background traffic (updates, sync, field trials) off: on a machine with no outside
    // network it only fails, many connections at a time.
    const quietArgs = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run', '--disable-gpu'];
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--host-resolver-rules=MAP localhost 127.0.0.1, MAP * ~NOTFOUND', ...quietArgs] });
    const ctx = await browser.newContext();
    await ctx.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (u.hostname === 'localhost' || u.hostname === '127.0.0.1') return route.continue();
      blocked.push(u.href);
      return route.abort();
    });
    page = await ctx.newPage();
    page.setDefaultTimeout(60_000);
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('request', (r) => inFlight.set(r, { url: r.url(), at: performance.now() }));
    page.on('requestfinished', (r) => inFlight.delete(r));
    page.on('requestfailed', (r) => inFlight.delete(r));
    cdp = await ctx.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true } }));
    console.log(`console screenshots: ${SHOTS}`);
  });
  after(async () => {
    await browser?.close();
    await c?.stop();
  });

  test('served by fleetkey under a strict CSP; a wrong token is refused; the admin token signs in', async () => {
    const res = await fetch(`${c.info.url}/console`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-security-policy'), CONSOLE_CSP);
    assert.match(CONSOLE_CSP, /script-src 'self';/);
    assert.doesNotMatch(CONSOLE_CSP, /unsafe|https?:/);
    assert.doesNotMatch(await res.text(), /<script>|<style>|\sstyle=|\son\w+=/i, 'no inline script or style');
    assert.equal((await fetch(`${c.info.url}/console/..%2Fapp.ts`)).status, 404);

    await page.goto(`${base}/console`);
    await ready('#/signin');
    await check('signin');
    await page.fill('#token', 'wrong');
    await page.click('button[type=submit]');
    await page.getByRole('alert').filter({ hasText: 'unauthorized' }).waitFor();
    await page.fill('#token', c.info.token);
    await page.click('button[type=submit]');
    await ready('#/overview');
  });

  test("the browser's canonical JSON and WebAuthn challenge are the server's, byte for byte", async () => {
    const values = [{ kind: 'approval', requestDigest: 'ab'.repeat(32), decision: 'approve', approver: 'alice', issuedAt: 1_700_000_000_000 }, { b: [1, 'é\u2028"', null, true, { z: 0.5, a: -3 }], a: { '': 'x', é: 1, B: [] } }];
    const got = await page.evaluate(async (vs) => {
      const m: any = { ...(await import(`${location.origin}/console/canonical.js`)), ...(await import(`${location.origin}/console/digest.js`)) };
      return Promise.all(vs.map(async (v) => ({ json: m.canonicalJson(v), approval: m.toHex(await m.digestOf(m.DOMAINS.approval, v)), control: m.toHex(await m.digestOf(m.DOMAINS.control, v)) })));
    }, values);
    assert.deepEqual(got, values.map((v) => ({ json: canonicalJson(v), approval: digestOf(DOMAINS.approval, v), control: digestOf(DOMAINS.control, v) })));
  });

  test('overview: signer nodes up, signing figures, pending approvals', async () => {
    await open('#/overview');
    await page.getByText('Signer nodes up: 3 of 3').waitFor();
    await page.getByRole('cell', { name: 'Signatures since start' }).or(page.getByText('Signatures since start')).first().waitFor();
    await check('overview');
  });

  test('approvals inbox: a request above the threshold shows what it does and the rule that asked', async () => {
    const big = request(agent, grantId, wallet.id, { kind: 'solana_transaction', data: solTransfer(wallet.address, 200_000_000n, SOL_DEST, 7), opts: { network: 'mainnet-beta' } }, { ttlMs: 600_000 });
    const q = await A('POST', '/v1/requests', big);
    assert.equal(q.status, 202, JSON.stringify(q.body));
    await open('#/approvals');
    const card = page.getByRole('article', { name: `Request ${big.request.requestId}` });
    await card.getByText(`transfer 200000000 lamports (SOL) to ${SOL_DEST}`).first().waitFor();
    await card.getByRole('cell', { name: 'big (1 of alice, bob)' }).waitFor();
    await card.getByRole('cell', { name: SOL_DEST }).waitFor();
    await check('approvals');
  });

  test('passkeys: a P-256 passkey registered with the virtual authenticator gives the pinned key object', async () => {
    await open('#/passkeys');
    await page.fill('#passkey-name', 'alice');
    await page.getByRole('button', { name: 'Register a passkey' }).click();
    await page.getByText('Registered alice').waitFor();
    const saved = await page.evaluate(() => JSON.parse(localStorage.getItem('fleetkey.passkeys')!));
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.deepEqual(credentials.map((x) => Buffer.from(x.credentialId, 'base64').toString('base64url')), [saved[0].key.credentialId], 'the private key stays in the authenticator');
    const key = saved[0].key;
    assert.deepEqual(Object.keys(key).sort(), ['credentialId', 'keyType', 'origin', 'publicKey', 'rpId']);
    assert.equal(key.keyType, 'webauthn-p256');
    assert.equal(key.origin, base);
    assert.equal(key.rpId, 'localhost');
    p256.Point.fromHex(key.publicKey).assertValidity();
    await check('passkeys');
  });

  test('wallets, a wallet (addresses, policy version, limits used / limit), its policy diff and simulator', async () => {
    await open('#/wallets');
    await page.fill('#wallet-search', 'treasury');
    await page.getByRole('link', { name: wallet.id }).waitFor();
    await check('wallets');
    await open(`#/wallet/${wallet.id}`);
    await page.getByRole('cell', { name: wallet.address }).waitFor();
    await page.getByRole('cell', { name: '0 / 5000000000' }).waitFor();
    await check('wallet');
    await open(`#/policy/${wallet.id}`);
    await page.locator('.diff-add', { hasText: '"id": "big"' }).waitFor();
    await page.selectOption('#sim-kind', 'solana_transaction');
    await page.fill('#sim-chain', 'mainnet-beta');
    await page.fill('#sim-payload', solTransfer(wallet.address, 300_000_000n, SOL_DEST, 9));
    await page.getByRole('button', { name: 'Simulate' }).click();
    await page.locator('#sim-result').getByText('Decision: needs_approval').waitFor();
    await page.locator('#sim-result').getByText(`transfer 300000000 lamports (SOL) to ${SOL_DEST}`).waitFor();
    await check('policy');
  });

  test(`a fleet of ${DEVICES.toLocaleString('en')} devices pages and finds by index and by device DID`, async () => {
    await open(`#/fleet/${fleetId}`);
    await page.getByText('Devices 0 to 49').waitFor();
    await page.click('#next-page');
    await page.getByText('Devices 50 to 99').waitFor();
    await page.fill('#device-search', '99999');
    await page.getByRole('button', { name: 'Find' }).click();
    await page.getByText('Device 99999').waitFor();
    await page.fill('#device-search', deviceDid);
    await page.getByRole('button', { name: 'Find' }).click();
    await page.getByText(`Device ${DEVICES}`).waitFor();
    await page.getByRole('cell', { name: deviceDid }).waitFor();
    await check('fleet');
  });

  test('grants and the audit log: chain verifies, filters, export', async () => {
    await open('#/grants');
    await page.getByRole('cell', { name: grantId, exact: true }).waitFor();
    await check('grants');
    await open('#/audit');
    await page.locator('#chain-status', { hasText: 'Chain verifies' }).waitFor();
    await page.fill('#f-outcome', 'pending_approval');
    await page.getByText('1 entries match').waitFor();
    // The pages come from the server, newest first, below a cursor; search terms are checked, not interpolated.
    const p1 = await A('GET', '/v1/console/audit?limit=2');
    assert.equal(p1.status, 200, JSON.stringify(p1.body));
    assert.equal(p1.body.entries.length, 2);
    assert.ok(p1.body.entries[0].seq > p1.body.entries[1].seq && p1.body.next === p1.body.entries[1].seq);
    const p2 = await A('GET', `/v1/console/audit?limit=2&before=${p1.body.next}`);
    assert.deepEqual(p2.body.entries.map((e: { seq: number }) => e.seq), [p1.body.next - 1, p1.body.next - 2]);
    const hit = await A('GET', `/v1/console/audit?outcome=pending_approval&wallet=${wallet.id}`);
    assert.equal(hit.body.entries.length, 1);
    assert.equal(hit.body.next, null);
    assert.equal((await A('GET', `/v1/console/audit?wallet=${encodeURIComponent("' OR 1=1")}`)).body.error.code, 'validation_failed');
    const dl = page.waitForEvent('download');
    await page.getByRole('link', { name: 'Export (JSON lines)' }).click();
    const lines = readFileSync(await (await dl).path(), 'utf8').trim().split('\n');
    assert.ok(lines.length > 3 && lines.every((l) => typeof JSON.parse(l).hash === 'string'));
    await check('audit');
  });

  /** Registers a passkey named `name` in the browser (virtual authenticator) and answers its key object. */
  async function passkey(name: string) {
    await open('#/passkeys');
    await page.fill('#passkey-name', name);
    await page.getByRole('button', { name: 'Register a passkey' }).click();
    await page.getByText(`Registered ${name}`).waitFor();
    return page.evaluate((n) => JSON.parse(localStorage.getItem('fleetkey.passkeys')!).find((p: { name: string }) => p.name === n).key, name);
  }
  /** Clicks the action button named `name` and answers what the console said once it finished. */
  async function act(name: string): Promise<string> {
    const box = page.locator('.action', { has: page.getByRole('button', { name, exact: true }) });
    await box.getByRole('button').click();
    const note = box.locator('.note');
    await page.waitForFunction((el) => !!el && el.textContent !== '' && el.textContent !== 'Working…', await note.elementHandle());
    return (await note.textContent()) ?? '';
  }
  const solRequest = (lamports: bigint, salt: number) => request(agent, grantId, wallet.id, { kind: 'solana_transaction', data: solTransfer(wallet.address, lamports, SOL_DEST, salt), opts: { network: 'mainnet-beta' } }, { ttlMs: 600_000 });

  test('approvers with passkeys: alice approves in the browser and the request is signed; bob rejects another and it is refused', async () => {
    const alice = await page.evaluate(() => JSON.parse(localStorage.getItem('fleetkey.passkeys')!).find((p: { name: string }) => p.name === 'alice').key);
    const bob = await passkey('bob');
    assert.equal((await publish(c, { kind: 'approvers', version: 1, approvers: { alice, bob }, issuedAt: Date.now() })).status, 200);
    const pending = (await A('GET', '/v1/console/approvals')).body.requests;
    assert.equal(pending.length, 1);
    const first = pending[0];
    await open('#/approvals');
    await page.selectOption('#approver-passkey', 'alice');
    assert.equal(await act(`Approve ${first.requestId}`), 'Now signed');
    const done = await A('GET', `/v1/requests/${first.requestId}`);
    assert.equal(done.body.status, 'signed', JSON.stringify(done.body));
    const stored = (await A('GET', '/v1/console/approvals')).body.requests;
    assert.equal(stored.length, 0);
    // The signature verifies with noble's strict Ed25519 over the transaction's message bytes.
    const message = decode('solana_transaction', first.request.payload.data, { from: wallet.address }).signingPayloads[0];
    assert.ok(verifySig('ed25519', wallet.publicKey, message, done.body.signature), JSON.stringify(done.body));

    const second = solRequest(300_000_000n, 11);
    assert.equal((await A('POST', '/v1/requests', second)).status, 202);
    await open('#/approvals');
    await page.selectOption('#approver-passkey', 'bob');
    assert.equal(await act(`Reject ${second.request.requestId}`), 'Now rejected');
    assert.equal((await A('GET', `/v1/requests/${second.request.requestId}`)).body.status, 'rejected');

    await open('#/audit');
    await page.fill('#f-outcome', 'approve');
    await page.getByRole('cell', { name: 'alice', exact: true }).waitFor();
    await page.fill('#f-outcome', 'reject');
    await page.getByRole('cell', { name: 'bob', exact: true }).waitFor();
    await check('audit-approvals');
  });

  test('passkey sign-in: an approver passkey opens a read session that cannot change anything', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForFunction(() => document.getElementById('main')?.dataset.ready === '#/signin');
    await page.selectOption('#signin-passkey', 'alice');
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForFunction(() => document.getElementById('main')?.dataset.ready === '#/overview');
    await page.getByText('Signed in: passkey approver:alice (viewer)').waitFor();
    // Forced past the interface: the session's token on a mutating route is refused by its role.
    const forced = await page.evaluate(async () => {
      const res = await fetch('/v1/control', { method: 'POST', headers: { authorization: `Bearer ${sessionStorage.getItem('fleetkey.token')}`, 'content-type': 'application/json' }, body: '{}' });
      return { status: res.status, body: await res.json() };
    });
    assert.equal(forced.status, 403);
    assert.equal(forced.body.error.code, 'forbidden_role');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForFunction(() => document.getElementById('main')?.dataset.ready === '#/signin');
  });

  test('a viewer token: no revoke button, and a forced revocation or wallet creation is refused by role', async () => {
    const t = newOperatorToken();
    const created = await A('POST', '/v1/operator-tokens', signOperatorDoc({ kind: 'operator_token', id: t.id, role: 'viewer', label: 'auditor', tokenHash: t.tokenHash, issuedAt: Date.now() }, readOwnerSecret(c.info.ownerKey)));
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await page.fill('#token', t.token);
    await page.click('button[type=submit]');
    await page.waitForFunction(() => document.getElementById('main')?.dataset.ready === '#/overview');
    await page.getByText(`Signed in: token ${t.id} (viewer)`).waitFor();
    await open('#/grants');
    await page.getByText('Revoking a grant takes the owner').waitFor();
    assert.equal(await page.getByRole('button', { name: /^Revoke / }).count(), 0, 'no revoke button for a viewer');
    // No named function inside (tsx would wrap it in a helper the page does not have).
    const forced = await page.evaluate((grantId) =>
      Promise.all(
        ([['/v1/control', { doc: { kind: 'revocation', grantId, issuedAt: Date.now() }, sig: '00'.repeat(64), signer: '00'.repeat(32) }], ['/v1/wallets', { scheme: 'ed25519' }]] as const).map(async ([path, body]) => {
          const res = await fetch(path, { method: 'POST', headers: { authorization: `Bearer ${sessionStorage.getItem('fleetkey.token')}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
          return { status: res.status, code: (await res.json()).error?.code };
        }),
      ), grantId);
    assert.deepEqual(forced, [{ status: 403, code: 'forbidden_role' }, { status: 403, code: 'forbidden_role' }]);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForFunction(() => document.getElementById('main')?.dataset.ready === '#/signin');
  });

  test('the owner passkey, pinned by every node, signs in and revokes a grant in the browser; every signer refuses the agent after', async () => {
    await page.fill('#token', c.info.token);
    await page.click('button[type=submit]');
    await page.waitForFunction(() => document.getElementById('main')?.dataset.ready === '#/overview');
    const ownerKey = await passkey('owner');
    // Owner keys are pinned when a node starts: pin the browser's passkey beside the key file's, restart.
    const names = [...c.info.signers.map((_, i) => `signer-${i + 1}`), 'server'];
    for (const n of names) appendFileSync(join(c.dataDir, n, 'owner.pub'), JSON.stringify(ownerKey) + '\n');
    const t0 = performance.now();
    await Promise.all(names.slice(0, -1).map((n) => c.restart(n))); // the signers together, then the server
    await c.restart('server');
    console.log(`restarted ${names.length} processes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await open('#/overview');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.selectOption('#signin-passkey', 'owner');
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForFunction(() => document.getElementById('main')?.dataset.ready === '#/overview');
    await page.getByText('Signed in: passkey owner#1 (viewer, owner documents)').waitFor();

    const before = solRequest(1000n, 21);
    assert.equal((await A('POST', '/v1/requests', before)).status, 200, 'the grant works before');
    await open('#/grants');
    await page.selectOption('#owner-passkey', 'owner');
    assert.equal(await act(`Revoke ${grantId}`), 'Revoked: delivered to 3 signer(s)');
    const after = solRequest(1000n, 22);
    assert.equal((await A('POST', '/v1/requests', after)).body.error.code, 'grant_revoked');
    const token = readFileSync(join(c.dataDir, 'cluster-token'), 'utf8').trim();
    const p = after.request.payload;
    for (const [i, s] of c.info.signers.entries()) {
      const r = await call(s.url, token, 'POST', '/v1/sign', { requestId: after.request.requestId, walletId: wallet.id, epoch: 0, message: bytesToHex(decode(p.kind, p.data, { from: wallet.address }).signingPayloads[0]), nonceId: 'x', commitments: {}, auth: { agent: after } });
      assert.equal(r.body.error?.code, 'grant_revoked', `signer ${i + 1}: ${JSON.stringify(r.body)}`);
    }
    await open('#/grants');
    await check('grants-revoked');
  });

  test('the page logged no error (a CSP violation is one) and reached nothing but this loopback server', () => {
    assert.deepEqual(pageErrors.filter((e) => !/status of 40[13]/.test(e)), []);
    assert.deepEqual(blocked, []);
  });
});
