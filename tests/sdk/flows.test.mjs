// App flows of the official OpenIM SDK core (wasm, in headless Chromium) against our server.
// Each flow has its own users; a flow fails if any REST call the SDK made failed (404, non-200,
// non-zero errCode) unless the flow declared it, or if an awaited event never came.
import assert from 'node:assert/strict';
import { Platform, RecvOpt, SdkError, chatID, eventually, flows, sleep } from './harness.mjs';

const flow = flows();

const texts = (msgs) => msgs.map((m) => m.textElem?.content);
const APP_HEADERS = 'content-type,operationid,token,reqfuncname';

flow('01 a page on another origin calls the REST API (CORS)', async (s, _t, h) => {
  const api = s.server.apiAddr;
  const origin = h.origin;
  const pre = await fetch(`${api}/user/get_users_info`, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': APP_HEADERS },
  });
  assert.ok(pre.status >= 200 && pre.status < 300, `CORS preflight OPTIONS /user/get_users_info -> ${pre.status}`);
  const allowOrigin = pre.headers.get('access-control-allow-origin');
  assert.ok(allowOrigin === '*' || allowOrigin === origin, `preflight Access-Control-Allow-Origin is ${allowOrigin}`);
  const allowHeaders = (pre.headers.get('access-control-allow-headers') ?? '').toLowerCase();
  for (const header of APP_HEADERS.split(',')) {
    assert.ok(allowHeaders === '*' || allowHeaders.split(/\s*,\s*/).includes(header),
      `preflight Access-Control-Allow-Headers (${allowHeaders}) lacks ${header}`);
  }

  const [alice] = await s.users('alice');
  const token = await s.server.userToken(alice.userID, Platform.Web);
  const page = await s.blankPage();
  const r = await page.evaluate(async ({ api, token, userID }) => {
    try {
      const res = await fetch(`${api}/user/get_users_info`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', operationID: 'cors-flow', token },
        body: JSON.stringify({ userIDs: [userID] }),
      });
      return { status: res.status, body: await res.json() };
    } catch (e) {
      return { error: String(e) };
    }
  }, { api, token, userID: alice.userID });
  assert.ok(!r.error, `a cross-origin POST /user/get_users_info from ${origin} failed in the browser: ${r.error}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.errCode, 0, JSON.stringify(r.body));
});

flow('02 two users log in with no failed call during login sync', async (s, t) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  for (const d of [a, b]) {
    assert.ok(d.seen('OnSyncServerFinish').length > 0, `${d.label}: no OnSyncServerFinish`);
    assert.ok(d.rest.length > 0, `${d.label}: the SDK made no REST call at login`);
  }
  t.diagnostic(`login REST calls: ${[...new Set(a.rest.map((c) => c.path))].join(' ')}`);
  t.diagnostic(`WebSocket: ${a.sockets[0]?.url}`);
});

flow('03 a text reaches the peer live and the sender\'s copy gets its seq', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  const sent = await a.sendText(bob, 'hello bob');
  const got = await b.waitForText(alice, 'hello bob');
  assert.ok(got.seq > 0, `Bob got seq ${got.seq}`);
  await eventually("Alice's own copy has a seq",
    async () => (await a.history(bob)).find((m) => m.clientMsgID === sent.clientMsgID),
    (m) => m?.seq > 0);
});

flow('04 an idle web client stays connected for two minutes', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  const since = [a.mark(), b.mark()];
  await sleep(125_000);
  [a, b].forEach((d, i) => {
    const trouble = d.events.filter((e) => e.seq > since[i] &&
      ['OnConnecting', 'OnConnectFailed', 'OnConnectSuccess', 'OnKickedOffline'].includes(e.name));
    assert.deepEqual(trouble.map((e) => e.name), [], `${d.label} lost its connection while idle`);
    assert.equal(d.sockets.length, 1, `${d.label} opened ${d.sockets.length} WebSockets while idle (reconnects)`);
  });
  await a.sendText(bob, 'still there?');
  await b.waitForText(alice, 'still there?');
}, { timeout: 200_000 });

flow('05 unread count, mark as read, and the read receipt', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  const sent = await a.sendText(bob, 'did you read this?');
  await b.waitForText(alice, 'did you read this?');
  const cid = chatID(alice, bob);
  await eventually("Bob's conversation list shows 1 unread in the chat with Alice", () => b.conversations(),
    (list) => list?.some((c) => c.conversationID === cid && c.unreadCount === 1));
  await b.markRead(alice);
  await eventually("Bob's chat with Alice shows 0 unread", () => b.conversationWith(alice), (c) => c?.unreadCount === 0);
  await a.waitEvent('OnRecvC2CReadReceipt', (rs) => rs?.some((r) => r.userID === bob.userID));
  await eventually("Alice's message shows as read", async () => (await a.history(bob)).find((m) => m.clientMsgID === sent.clientMsgID),
    (m) => m?.isRead === true);
});

flow('06 a friend application is accepted and both friend lists update', async (s, t) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  await a.addFriend(bob, 'hi, I am Alice');
  await b.waitEvent('OnFriendApplicationAdded', (app) => app?.fromUserID === alice.userID);
  const apps = await b.friendApplications();
  assert.ok(apps?.some((x) => x.fromUserID === alice.userID), `Bob's applications: ${JSON.stringify(apps)}`);
  await b.acceptFriend(alice);
  await a.waitEvent('OnFriendApplicationAccepted', (app) => app?.toUserID === bob.userID);
  await eventually("Bob is in Alice's friend list", () => a.friends(), (fs) => fs?.some((f) => f.userID === bob.userID));
  await eventually("Alice is in Bob's friend list", () => b.friends(), (fs) => fs?.some((f) => f.userID === alice.userID));
  // The SDK fires OnFriendAdded only for friends an incremental sync inserts, not after a full one.
  for (const [d, peer] of [[a, bob], [b, alice]]) {
    if (!d.seen('OnFriendAdded').some((f) => f?.userID === peer.userID)) t.diagnostic(`${d.label}: no OnFriendAdded`);
  }
});

flow('07 a refused friend application is seen by the applicant', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  await a.addFriend(bob, 'me again');
  await b.waitEvent('OnFriendApplicationAdded', (app) => app?.fromUserID === alice.userID);
  await b.refuseFriend(alice);
  await a.waitEvent('OnFriendApplicationRejected', (app) => app?.toUserID === bob.userID);
  const mine = await a.sentFriendApplications();
  assert.ok(mine?.some((x) => x.toUserID === bob.userID && x.handleResult === -1),
    `Alice's applications: ${JSON.stringify(mine)}`);
  assert.ok(!(await a.friends()).some((f) => f.userID === bob.userID), 'Bob became a friend after refusing');
});

flow('08 a blocked sender is refused, then can send after unblock', async (s, t) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  if (await b.block(alice)) t.diagnostic('addBlack hit the SDK\'s own local sync race (openim-sdk-core#822)');
  await b.waitEvent('OnBlackAdded', (x) => x?.userID === alice.userID);
  await eventually("Bob's blacklist holds Alice", async () => (await b.call('getBlackList')).map((x) => x.userID),
    (ids) => ids.includes(alice.userID) && ids.length === 1);
  const refused = await a.sendText(bob, 'can you hear me?').then(() => null, (e) => e);
  assert.ok(refused instanceof SdkError && refused.errCode, 'sending to a user who blocked the sender succeeded');
  t.diagnostic(`refused with errCode ${refused.errCode} ${refused.errMsg}`);
  await b.unblock(alice);
  await b.waitEvent('OnBlackDeleted', (x) => x?.userID === alice.userID);
  await a.sendText(bob, 'and now?');
  await b.waitForText(alice, 'and now?');
  const all = b.seen('OnRecvNewMessages').flat();
  assert.ok(!texts(all).includes('can you hear me?'), 'Bob received the message sent while Alice was blocked');
});

flow('09 a new nickname reaches a friend', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  await s.server.asAdmin('/friend/import_friend', { ownerUserID: alice.userID, friendUserIDs: [bob.userID] });
  const a = await s.device(alice);
  const b = await s.device(bob);
  await a.setNickname('Alice Cooper');
  await a.waitEvent('OnSelfInfoUpdated', (u) => u?.nickname === 'Alice Cooper');
  // What Bob's contact list shows: his SDK's local friend record, updated by the server's notification.
  await eventually("Bob's friend list shows Alice's new nickname",
    async () => (await b.friends()).find((f) => f.userID === alice.userID),
    (f) => f?.nickname === 'Alice Cooper');
  // No OnFriendInfoChanged event yet: the server answers friend sync in full (`full: true`), and
  // the SDK then rewrites its friend table without per-friend events. Per-change events need
  // the incremental version logs (ARCHITECTURE.md, "Incremental sync is always full").
});

// Policy 1 in config/share.yml kicks an older session on the same platform: a second device of the
// same user is a Windows client (platformID 3), running the same SDK core.
flow('10 pin and do-not-disturb reach the user\'s other device', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a1 = await s.device(alice);
  const a2 = await s.device(alice, { platformID: Platform.Windows });
  const b = await s.device(bob);
  await b.sendText(alice, 'hi alice');
  await a1.waitForText(bob, 'hi alice');
  await a2.waitForText(bob, 'hi alice');
  await a1.pin(bob);
  await a1.setDoNotDisturb(bob);
  await eventually("the chat is pinned and muted on Alice's first device", () => a1.conversationWith(bob),
    (c) => c?.isPinned === true && c?.recvMsgOpt === RecvOpt.NotNotify);
  await eventually("the chat is pinned and muted on Alice's second device", () => a2.conversationWith(bob),
    (c) => c?.isPinned === true && c?.recvMsgOpt === RecvOpt.NotNotify);
});

flow('11 a new device gets the conversation list and history', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b1 = await s.device(bob);
  await a.sendText(bob, 'first');
  await a.sendText(bob, 'second');
  await b1.waitForText(alice, 'second');
  await b1.close();
  const b2 = await s.device(bob);
  const list = await b2.conversations();
  assert.ok(list?.some((c) => c.conversationID === chatID(alice, bob)),
    `Bob's new device lists ${JSON.stringify(list?.map((c) => c.conversationID))}`);
  await eventually("Bob's new device has the history", async () => texts(await b2.history(alice)),
    (t) => t.includes('first') && t.includes('second'));
});

flow('12 a cleared chat stays cleared on the user\'s other device', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b1 = await s.device(bob);
  const b2 = await s.device(bob, { platformID: Platform.Windows });
  await a.sendText(bob, 'one');
  await a.sendText(bob, 'two');
  await b1.waitForText(alice, 'two');
  await b2.waitForText(alice, 'two');
  await b1.clearChat(alice);
  await eventually("Bob's first device shows the chat empty", async () => texts(await b1.history(alice)), (t) => t.length === 0);
  await eventually("Bob's other device shows the chat empty", async () => texts(await b2.history(alice)), (t) => t.length === 0);
  await b2.close();
  const b3 = await s.device(bob, { platformID: Platform.Windows });
  assert.deepEqual(texts(await b3.history(alice)), [], 'the cleared messages came back on a fresh device');
});

flow('13 a subscriber sees a user go offline and online', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  const now = await b.subscribeStatus([alice]);
  assert.ok(now?.some((u) => u.userID === alice.userID && u.status === 1), `subscribe answered ${JSON.stringify(now)}`);
  await a.close();
  await b.waitEvent('OnUserStatusChanged', (u) => u?.userID === alice.userID && u?.status === 0);
  const since = b.mark();
  await s.device(alice);
  await b.waitEvent('OnUserStatusChanged', (u) => u?.userID === alice.userID && u?.status === 1, 15_000, since);
});

flow('14 logout closes the connection cleanly', async (s) => {
  const [alice] = await s.users('alice');
  const a = await s.device(alice);
  const since = a.mark();
  await a.logout();
  await eventually("Alice's WebSocket is closed", async () => a.sockets.map((w) => w.closedAt), (c) => c.every(Boolean), 5_000);
  assert.equal(await a.loginStatus(), 1, 'getLoginStatus after logout is not Logout (1)');
  await sleep(5_000);
  assert.equal(a.sockets.length, 1, 'the SDK opened another WebSocket after logout');
  const after = a.events.filter((e) => e.seq > since).map((e) => e.name);
  for (const bad of ['OnConnecting', 'OnConnectFailed', 'OnKickedOffline', 'OnUserTokenInvalid']) {
    assert.ok(!after.includes(bad), `${bad} after logout (events: ${after.join(', ')})`);
  }
});

flow('15 relogin after logout works and brings what was missed', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  await a.logout();
  await b.sendText(alice, 'while you were out');
  await a.login();
  await eventually('Alice has the message sent while she was logged out', async () => texts(await a.history(bob)),
    (t) => t.includes('while you were out'));
  await b.sendText(alice, 'welcome back');
  await a.waitForText(bob, 'welcome back');
});

flow('16 an administrator\'s business notification reaches the app\'s business listener', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  const body = { key: 'order-shipped', data: '{"order":7}', sendUserID: alice.userID, recvUserID: bob.userID };
  await s.server.asAdmin('/msg/send_business_notification', body);
  const parse = (d) => (typeof d === 'string' ? JSON.parse(d) : d);
  for (const dev of [b, a]) {
    const got = parse(await dev.waitEvent('OnRecvCustomBusinessMessage', (d) => parse(d)?.key === 'order-shipped'));
    assert.deepEqual(got, { key: 'order-shipped', data: '{"order":7}' });
  }
  // Online only, and not a chat message: nothing shows in either conversation list.
  assert.ok(!texts(b.seen('OnRecvNewMessages').flat()).length, 'a business notification became a chat message');
});
