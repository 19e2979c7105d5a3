// Drives the official OpenIM SDK core (npm @openim/wasm-client-sdk, Go compiled to WebAssembly with
// a sql.js store) in headless Chromium against our server. One browser context per user and device;
// every REST call the SDK makes is recorded, and any that failed fails the flow unless declared.
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { Server, freePort } from './server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SDK_DIR = path.join(HERE, 'node_modules/@openim/wasm-client-sdk');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const DEBUG = !!process.env.SDK_DEBUG; // prints the SDK's own log and every console line
const WEB = 5;
export const Platform = { iOS: 1, Android: 2, Windows: 3, MacOSX: 4, Web: 5 };
export const RecvOpt = { Normal: 0, NotReceive: 1, NotNotify: 2 };

/** The single-chat conversation ID both sides use. */
export const chatID = (a, b) => `si_${[a.userID, b.userID].sort().join('_')}`;

// The app page: wasm_exec.js defines Go, then the SDK's ESM entry point, which starts its worker
// from beside itself. Every SDK event is handed to Node through the `__openimEvent` binding.
const APP_PAGE = `<!doctype html><meta charset="utf-8"><title>OpenIM SDK flows</title>
<script src="/wasm_exec.js"></script>
<script type="module">
  import { getSDK, CbEvents } from '/lib/index.es.js';
  const sdk = getSDK({ debug: ${DEBUG} });
  for (const name of Object.values(CbEvents)) sdk.on(name, (e) => window.__openimEvent(name, e ?? null));
  // Calls one SDK method; a rejection becomes a value, so that its errCode reaches Node intact.
  window.openim = async (method, args) => {
    try {
      const res = await sdk[method](...args);
      return { ok: true, data: res && typeof res === 'object' && 'data' in res ? res.data : res };
    } catch (e) {
      return { ok: false, errCode: e?.errCode, errMsg: e?.errMsg ?? String(e?.message ?? e) };
    }
  };
  // Files made in the page, as an app gets them from a file picker: makeBytes (a
  // deterministic byte pattern), makePng (a real picture drawn on a canvas).
  const files = {};
  window.makeBytes = (id, size, name, type) => {
    const bytes = new Uint8Array(size);
    let x = 2463534242 ^ size;
    for (let i = 0; i < size; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; bytes[i] = x & 255; }
    files[id] = new File([bytes], name, { type });
    return size;
  };
  window.makePng = async (id, width, height, name) => {
    const canvas = new OffscreenCanvas(width, height);
    const g = canvas.getContext('2d');
    const grad = g.createLinearGradient(0, 0, width, height);
    grad.addColorStop(0, '#0a84ff');
    grad.addColorStop(1, '#ff375f');
    g.fillStyle = grad;
    g.fillRect(0, 0, width, height);
    for (let i = 0; i < 200; i++) {
      g.fillStyle = 'hsl(' + ((i * 37) % 360) + ' 80% 50%)';
      g.fillRect((i * 97) % width, (i * 61) % height, 40, 30);
    }
    const blob = await canvas.convertToBlob({ type: 'image/png' });
    files[id] = new File([blob], name, { type: 'image/png' });
    return blob.size;
  };
  const sha256 = async (buf) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', buf))]
    .map((b) => b.toString(16).padStart(2, '0')).join('');
  window.fileDigest = async (id) => sha256(await files[id].arrayBuffer());
  // What an app gets loading a URL as an image source or a download.
  window.fetchInfo = async (url) => {
    try {
      const res = await fetch(url);
      const buf = await res.arrayBuffer();
      const info = { status: res.status, type: res.headers.get('content-type'), size: buf.byteLength, sha256: await sha256(buf) };
      if (info.type?.startsWith('image/')) {
        const bitmap = await createImageBitmap(new Blob([buf]));
        Object.assign(info, { width: bitmap.width, height: bitmap.height });
      }
      return info;
    } catch (e) {
      return { error: String(e) };
    }
  };
  // Calls an SDK method whose first argument takes page files: withFiles maps its keys to IDs.
  window.openimWithFiles = async (method, args, withFiles) => {
    for (const [key, id] of Object.entries(withFiles)) args[0][key] = files[id];
    return window.openim(method, args);
  };
  window.sdkReady = true;
</script>`;
const BLANK_PAGE = '<!doctype html><meta charset="utf-8"><title>blank</title>';

const TYPES = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.map': 'application/json' };

/** Serves the app page, the SDK's lib/ and, at the root, the three files the SDK fetches. */
async function startPageServer() {
  const files = (url) => {
    if (url.startsWith('/lib/')) return path.join(SDK_DIR, path.normalize(url).replace(/^(\.\.[/\\])+/, ''));
    if (['/openIM.wasm', '/sql-wasm.wasm', '/wasm_exec.js'].includes(url)) return path.join(SDK_DIR, 'assets', url);
    return null;
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x').pathname;
    if (url === '/favicon.ico') {
      res.writeHead(204);
      return res.end();
    }
    if (url === '/' || url === '/blank.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      return res.end(url === '/' ? APP_PAGE : BLANK_PAGE);
    }
    const file = files(url);
    let stat;
    try { stat = file && statSync(file); } catch { stat = null; }
    if (!stat?.isFile()) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': stat.size,
      'Last-Modified': stat.mtime.toUTCString(),
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).pipe(res);
  });
  const port = await freePort();
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${port}` };
}

export class Harness {
  static async start() {
    const h = new Harness();
    h.server = await Server.start();
    ({ server: h.pages, origin: h.origin } = await startPageServer());
    h.browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    return h;
  }

  async close() {
    await this.browser?.close();
    await new Promise((resolve) => (this.pages ? this.pages.close(resolve) : resolve()));
    await this.server?.stop();
  }

  /** A flow's world: its own users, devices and REST record. */
  session(name) {
    return new Session(this, name);
  }
}

let sessionCount = 0;

export class Session {
  constructor(harness, name) {
    this.h = harness;
    this.name = name;
    this.tag = `${Date.now().toString(36)}${(sessionCount++).toString(36)}`;
    this.devices = [];
    this.failures = []; // REST calls that failed and were not declared
    this.expected = []; // [route, errCode?] the flow declared as allowed to fail
    this.pending = new Set(); // response bodies still being read
  }

  get server() { return this.h.server; }

  /** Registers users with IDs unique to this session; `users('alice', 'bob')`. */
  async users(...names) {
    const users = names.map((n) => ({ userID: `${n}${this.tag}`, nickname: n[0].toUpperCase() + n.slice(1) }));
    await this.server.registerUsers(users);
    return users;
  }

  /** A REST call to `route` that fails (optionally with that errCode) is part of the flow. */
  expectRestError(route, errCode) {
    this.expected.push([route, errCode]);
  }

  /** Opens a fresh browser context (its own IndexedDB) for the user, loads the SDK and logs in. */
  async device(user, { platformID = WEB, label } = {}) {
    const token = await this.server.userToken(user.userID, platformID);
    const dev = new Device(this, user, token, platformID, label ?? `${user.nickname}@${platformID}#${this.devices.length}`);
    this.devices.push(dev);
    await dev.open();
    await dev.login();
    return dev;
  }

  /** A page on the test origin without the SDK, for raw cross-origin calls. */
  async blankPage() {
    const context = await this.h.browser.newContext();
    this.contexts = [...(this.contexts ?? []), context];
    const page = await context.newPage();
    await page.goto(`${this.h.origin}/blank.html`);
    return page;
  }

  recordFailure(call) {
    if (this.expected.some(([route, code]) => call.path === route && (code === undefined || code === call.errCode))) {
      call.expected = true;
      return;
    }
    this.failures.push(call);
  }

  async settle() {
    await Promise.allSettled([...this.pending]);
  }

  /** Adds what the devices saw to a flow's error, so its message names the cause. */
  explain(err) {
    const lines = [];
    if (this.failures.length) lines.push('REST calls that failed:', ...this.failures.map(describeCall));
    for (const dev of this.devices) {
      const errors = dev.consoleErrors.slice(-5);
      if (errors.length) lines.push(`console errors on ${dev.label}:`, ...errors.map((e) => `  ${e.slice(0, 300)}`));
    }
    if (lines.length && err instanceof Error) err.message += `\n${lines.join('\n')}`;
    return err;
  }

  async close() {
    await this.settle();
    for (const dev of this.devices) await dev.close();
    for (const c of this.contexts ?? []) await c.close().catch(() => {});
  }

  /** Fails with every REST call that got a 404, a non-200 or a non-zero errCode. */
  assertNoFailedCalls() {
    if (this.failures.length) {
      throw new Error(`REST calls failed:\n${this.failures.map(describeCall).join('\n')}`);
    }
  }
}

function describeCall(c) {
  const what = c.failure ?? `HTTP ${c.status}${c.errCode ? ` errCode ${c.errCode} ${c.errMsg ?? ''}` : ''}`;
  return `  ${c.device}: ${c.method} ${c.path} -> ${what}`;
}

/** An error the SDK returned from a call, with its errCode. */
export class SdkError extends Error {
  constructor(device, method, errCode, errMsg) {
    // The SDK appends a Go stack trace after " | -> ": keep the message short.
    super(`${device}: ${method} failed: errCode ${errCode} ${String(errMsg).split(' | -> ')[0]}`);
    this.errCode = errCode;
    Object.defineProperty(this, 'errMsg', { value: errMsg, enumerable: false });
  }
}

/** One logged-in user on one device: a browser context running the SDK. */
export class Device {
  constructor(session, user, token, platformID, label) {
    Object.assign(this, { session, user, token, platformID, label });
    this.userID = user.userID;
    this.events = []; // {seq, name, data, errCode, errMsg, at}
    this.waiters = new Set();
    this.rest = []; // every REST call: {method, path, status, errCode, errMsg, failure}
    this.sockets = []; // {url, openedAt, closedAt}
    this.consoleErrors = [];
    this.uploads = []; // paths of the PUTs to the object store
  }

  async open() {
    const { h } = this.session;
    this.context = await h.browser.newContext();
    await this.context.exposeBinding('__openimEvent', (_src, name, e) => this.onEvent(name, e));
    this.page = await this.context.newPage();
    this.watchNetwork(h.server.apiAddr);
    this.page.on('console', (m) => {
      if (DEBUG) console.error(`[${this.label}] ${m.type()}: ${m.text()}`);
      if (m.type() === 'error') this.consoleErrors.push(m.text());
    });
    this.page.on('pageerror', (e) => this.consoleErrors.push(`page error: ${e.message}`));
    this.page.on('websocket', (ws) => {
      const s = { url: ws.url(), openedAt: Date.now(), closedAt: null };
      this.sockets.push(s);
      ws.on('close', () => { s.closedAt = Date.now(); });
    });
    await this.page.goto(`${h.origin}/`);
    await this.page.waitForFunction(() => window.sdkReady === true, null, { timeout: 30_000 });
  }

  watchNetwork(apiAddr) {
    const isApi = (url) => url.startsWith(apiAddr + '/');
    const record = (call) => {
      this.rest.push(call);
      if (call.failure || call.status !== 200 || (call.errCode !== undefined && call.errCode !== 0)) {
        this.session.recordFailure(call);
      }
    };
    this.context.on('request', (req) => {
      // Uploads to the embedded object store's presigned URLs (on the API's port).
      if (isApi(req.url()) && req.method() === 'PUT') this.uploads.push(new URL(req.url()).pathname);
    });
    this.context.on('response', (res) => {
      const req = res.request();
      // REST calls are POSTs; object downloads (GET) and uploads (PUT) are checked by the flows.
      if (!isApi(req.url()) || req.method() !== 'POST') return;
      const call = { device: this.label, method: req.method(), path: new URL(req.url()).pathname, status: res.status() };
      const read = res.text().then((text) => {
        try {
          const body = JSON.parse(text);
          call.errCode = body.errCode;
          call.errMsg = body.errMsg;
        } catch {
          if (call.status === 200) call.failure = `HTTP 200 with a body that is not JSON: ${text.slice(0, 80)}`;
        }
      }, () => {}).finally(() => {
        this.session.pending.delete(read);
        record(call);
      });
      this.session.pending.add(read);
    });
    this.context.on('requestfailed', (req) => {
      if (!isApi(req.url()) || req.method() !== 'POST') return;
      const errorText = req.failure()?.errorText;
      // A logout cancels the SDK's in-flight calls (the tail of the login sync, say): the browser
      // reports those as aborted. That is the client's doing, not a server failure.
      if (this.loggedOutAt && errorText === 'net::ERR_ABORTED') {
        this.rest.push({ device: this.label, method: req.method(), path: new URL(req.url()).pathname, status: 0, aborted: true });
        return;
      }
      record({
        device: this.label, method: req.method(), path: new URL(req.url()).pathname, status: 0,
        failure: `request failed (${errorText}; a missing CORS header fails this way)`,
      });
    });
  }

  onEvent(name, e) {
    const ev = { seq: this.events.length + 1, name, data: e?.data, errCode: e?.errCode, errMsg: e?.errMsg, at: Date.now() };
    this.events.push(ev);
    for (const w of this.waiters) {
      if (ev.seq > w.since && w.names.includes(name) && w.pred(ev.data, name)) w.done(null, ev);
    }
  }

  /** A mark in this device's event stream: pass it to waitEvent to see only later events. */
  mark() { return this.events.length; }

  /** Events of that name seen so far (their data). */
  seen(name) { return this.events.filter((e) => e.name === name).map((e) => e.data); }

  /** Waits for an SDK event whose data matches; returns its data. */
  async waitEvent(name, pred = () => true, timeoutMs = 15_000, since = 0) {
    return (await this.waitFirst([name], pred, timeoutMs, since)).data;
  }

  /** Waits for the first of several events; returns the event {name, data, errCode, errMsg}. */
  waitFirst(names, pred = () => true, timeoutMs = 15_000, since = 0) {
    const hit = this.events.find((e) => e.seq > since && names.includes(e.name) && pred(e.data, e.name));
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const w = {
        names, pred, since,
        done: (err, ev) => {
          clearTimeout(w.timer);
          this.waiters.delete(w);
          if (err) reject(err); else resolve(ev);
        },
      };
      w.timer = setTimeout(() => {
        const got = [...new Set(this.events.filter((e) => e.seq > since).map((e) => e.name))].join(', ') || 'none';
        w.done(new Error(`${this.label}: ${names.join(' or ')} never came within ${timeoutMs} ms (events seen: ${got})`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /** Calls an SDK method in the page; returns its data or throws SdkError with the errCode. */
  async call(method, ...args) {
    const r = await this.page.evaluate(([m, a]) => window.openim(m, a), [method, args]);
    if (!r.ok) throw new SdkError(this.label, method, r.errCode, r.errMsg);
    return r.data;
  }

  // --- session -----------------------------------------------------------------------------

  /** Logs in and waits until connected and the login sync is over. */
  async login() {
    const since = this.mark();
    this.loggedOutAt = null;
    const { apiAddr, wsAddr } = this.session.server;
    await this.call('login', {
      userID: this.userID, token: this.token, platformID: this.platformID, apiAddr, wsAddr,
      logLevel: DEBUG ? 5 : 2, isLogStandardOutput: DEBUG,
    });
    const connected = await this.waitFirst(
      ['OnConnectSuccess', 'OnConnectFailed', 'OnUserTokenInvalid', 'OnUserTokenExpired', 'OnKickedOffline'],
      undefined, 20_000, since);
    if (connected.name !== 'OnConnectSuccess') {
      throw new Error(`${this.label}: login ended in ${connected.name} (errCode ${connected.errCode} ${connected.errMsg ?? ''}); WebSocket ${this.sockets.at(-1)?.url}`);
    }
    const synced = await this.waitFirst(['OnSyncServerFinish', 'OnSyncServerFailed'], undefined, 20_000, since);
    if (synced.name === 'OnSyncServerFailed') throw new Error(`${this.label}: the login sync failed (OnSyncServerFailed)`);
  }

  async logout() {
    this.loggedOutAt = Date.now();
    await this.call('logout');
  }

  async loginStatus() {
    return this.call('getLoginStatus');
  }

  /** Closes the browser context: the device goes away without logging out. */
  async close() {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters) w.done(new Error(`${this.label} closed`));
    await this.context.close().catch(() => {});
  }

  // --- messages ------------------------------------------------------------------------------

  /** Sends a text to a user; returns the message as sendMessage resolved it. */
  async sendText(to, text) {
    const message = await this.call('createTextMessage', text);
    return this.call('sendMessage', { recvID: to.userID, groupID: '', message });
  }

  /** Waits for a live text from that user; returns the message. */
  async waitForText(from, text, timeoutMs = 15_000) {
    const isIt = (m) => m.sendID === from.userID && m.textElem?.content === text;
    const msgs = await this.waitEvent('OnRecvNewMessages', (ms) => ms?.some(isIt), timeoutMs);
    return msgs.find(isIt);
  }

  /** The chat with a peer, as this device's SDK stores it (newest last). */
  async history(peer, count = 50) {
    const r = await this.call('getAdvancedHistoryMessageList',
      { conversationID: chatID(this.user, peer), count, startClientMsgID: '', viewType: 0 });
    return r?.messageList ?? [];
  }

  async markRead(peer) {
    await this.call('markConversationMessageAsRead', chatID(this.user, peer));
  }

  async clearChat(peer) {
    await this.call('clearConversationAndDeleteAllMsg', chatID(this.user, peer));
  }

  // --- conversations -------------------------------------------------------------------------

  async conversations() {
    return this.call('getAllConversationList');
  }

  async conversationWith(peer) {
    return this.call('getOneConversation', { sourceID: peer.userID, sessionType: 1 });
  }

  async pin(peer, isPinned = true) {
    await this.call('pinConversation', { conversationID: chatID(this.user, peer), isPinned });
  }

  async setDoNotDisturb(peer) {
    await this.call('setConversationRecvMessageOpt', { conversationID: chatID(this.user, peer), opt: RecvOpt.NotNotify });
  }

  // --- friends -------------------------------------------------------------------------------

  async addFriend(peer, reqMsg = 'hi, add me') {
    await this.call('addFriend', { toUserID: peer.userID, reqMsg });
  }

  async friendApplications() {
    return this.call('getFriendApplicationListAsRecipient');
  }

  async sentFriendApplications() {
    return this.call('getFriendApplicationListAsApplicant');
  }

  async acceptFriend(peer) {
    await this.call('acceptFriendApplication', { toUserID: peer.userID, handleMsg: 'welcome' });
  }

  async refuseFriend(peer) {
    await this.call('refuseFriendApplication', { toUserID: peer.userID, handleMsg: 'no thanks' });
  }

  async friends() {
    return this.call('getFriendList', false);
  }

  /**
   * Blocks a user. openim-sdk-core up to v3.8.3-patch.14 (the wasm SDK 3.8.5 among them) syncs
   * the blacklist after addBlack without its relation lock, so the BlackAddedNotification's sync
   * can race it and fail on the local UNIQUE key (fixed upstream in openim-sdk-core#822, after
   * patch.14). The server call itself succeeded then; the caller checks the block took effect.
   * Returns true when that client race happened.
   */
  async block(peer) {
    const consoleBefore = this.consoleErrors.length;
    try {
      await this.call('addBlack', { toUserID: peer.userID, ex: '' });
      return false;
    } catch (e) {
      const localRace = e instanceof SdkError && e.errCode === 10005 && this.consoleErrors
        .slice(consoleBefore).some((m) => m.includes('UNIQUE constraint failed: local_blacks'));
      if (!localRace) throw e;
      return true;
    }
  }

  async unblock(peer) {
    await this.call('removeBlack', peer.userID);
  }

  // --- groups ----------------------------------------------------------------------------------

  /** Creates a group this user owns with those members; returns the group as the SDK has it. */
  async createGroup(members, { name = 'group', needVerification = 0, admins = [] } = {}) {
    return this.call('createGroup', {
      memberUserIDs: members.map((u) => u.userID), adminUserIDs: admins.map((u) => u.userID),
      ownerUserID: this.userID, groupInfo: { groupName: name, groupType: 2, needVerification },
    });
  }

  async sendGroupText(groupID, text) {
    const message = await this.call('createTextMessage', text);
    return this.call('sendMessage', { recvID: '', groupID, message });
  }

  /** Sends a group text that the server should refuse; returns the SdkError (or fails). */
  async sendGroupTextRefused(groupID, text) {
    const err = await this.sendGroupText(groupID, text).then(() => null, (e) => e);
    if (!(err instanceof SdkError)) throw new Error(`${this.label}: "${text}" to group ${groupID} was sent, not refused`);
    return err;
  }

  /** Waits for a live group text from that user; returns the message. */
  async waitForGroupText(groupID, from, text, timeoutMs = 15_000) {
    const isIt = (m) => m.groupID === groupID && m.sendID === from.userID && m.textElem?.content === text;
    const msgs = await this.waitEvent('OnRecvNewMessages', (ms) => ms?.some(isIt), timeoutMs);
    return msgs.find(isIt);
  }

  async joinedGroups() {
    return this.call('getJoinedGroupList');
  }

  /** The group as this device's SDK has it (undefined if unknown). */
  async group(groupID) {
    return (await this.call('getSpecifiedGroupsInfo', [groupID]))?.[0];
  }

  async groupMembers(groupID) {
    return this.call('getGroupMemberList', { groupID, filter: 0, offset: 0, count: 100 });
  }

  // --- media -------------------------------------------------------------------------------

  /** Makes a file in the page of `size` bytes (a fixed pattern); returns its SHA-256. */
  async makeFile(id, size, name, type = 'application/octet-stream') {
    await this.page.evaluate(([i, sz, n, t]) => window.makeBytes(i, sz, n, t), [id, size, name, type]);
    return this.page.evaluate((i) => window.fileDigest(i), id);
  }

  /** Draws a PNG of that size in the page; returns {size, sha256}. */
  async makePng(id, width, height, name = `${id}.png`) {
    const size = await this.page.evaluate(([i, w, h, n]) => window.makePng(i, w, h, n), [id, width, height, name]);
    return { size, sha256: await this.page.evaluate((i) => window.fileDigest(i), id) };
  }

  /** Calls an SDK method whose first argument gets page files at the keys of `withFiles`. */
  async callWithFiles(method, arg, withFiles) {
    const r = await this.page.evaluate(([m, a, f]) => window.openimWithFiles(m, [a], f), [method, arg, withFiles]);
    if (!r.ok) throw new SdkError(this.label, method, r.errCode, r.errMsg);
    return r.data;
  }

  /** Loads a URL from this device's page: {status, type, size, sha256, width?, height?}. */
  async fetchInfo(url) {
    const info = await this.page.evaluate((u) => window.fetchInfo(u), url);
    if (info.error) throw new Error(`${this.label}: fetching ${url} failed in the browser: ${info.error}`);
    return info;
  }

  /** Sends the page's PNG `fileId` ({size} from makePng) as a picture message. */
  async sendPicture(to, fileId, { size, width, height }) {
    const picture = { uuid: `${fileId}-${Date.now()}`, type: 'image/png', size, width, height, url: '' };
    const message = await this.callWithFiles('createImageMessageByFile',
      { sourcePicture: picture, bigPicture: picture, snapshotPicture: picture, sourcePath: '' }, { file: fileId });
    return this.call('sendMessage', { recvID: to.userID, groupID: '', message });
  }

  /** Sends the page's file `fileId` as a file message. */
  async sendFile(to, fileId, { name, size }) {
    const message = await this.callWithFiles('createFileMessageByFile',
      { filePath: '', fileName: name, uuid: `${fileId}-${Date.now()}`, sourceUrl: '', fileSize: size }, { file: fileId });
    return this.call('sendMessage', { recvID: to.userID, groupID: '', message });
  }

  /** Uploads the page's file `fileId` with the SDK's uploadFile; returns its URL. */
  async uploadFile(fileId, name, contentType) {
    const r = await this.callWithFiles('uploadFile', { name, contentType, uuid: `${fileId}-${Date.now()}` }, { file: fileId });
    return r.url;
  }

  /** Waits for a live message of that content type from that user; returns it. */
  async waitForMessage(from, contentType, timeoutMs = 30_000) {
    const isIt = (m) => m.sendID === from.userID && m.contentType === contentType;
    const msgs = await this.waitEvent('OnRecvNewMessages', (ms) => ms?.some(isIt), timeoutMs);
    return msgs.find(isIt);
  }

  // --- profile and presence ------------------------------------------------------------------

  async setNickname(nickname) {
    await this.call('setSelfInfo', { nickname });
  }

  async subscribeStatus(users) {
    return this.call('subscribeUsersStatus', users.map((u) => u.userID));
  }
}

/**
 * The flow runner of a test file: one harness (server, browser) for the file, and `flow(name,
 * body)` declaring a test with its own session. A flow fails if any REST call the SDK made failed
 * (404, non-200, non-zero errCode) unless the flow declared it, or if an awaited event never came.
 */
export function flows() {
  let h;
  before(async () => { h = await Harness.start(); });
  after(async () => { await h?.close(); });
  const flow = (name, body, { timeout = 90_000 } = {}) => {
    test(name, { timeout }, async (t) => {
      const s = h.session(name);
      try {
        await body(s, t, h);
        await s.settle();
      } catch (e) {
        await s.settle();
        throw s.explain(e);
      } finally {
        await s.close();
      }
      s.assertNoFailedCalls();
    });
  };
  return flow;
}

/** Polls `get` until `ok(value)`; fails naming `what` and the last value. */
export async function eventually(what, get, ok, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await get();
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what}: not so within ${timeoutMs} ms; last seen ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
