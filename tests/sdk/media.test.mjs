// Media flows of the official OpenIM SDK core (wasm, in headless Chromium): pictures, files and
// avatars go up through OpenIM's /object/* upload flow to the server's embedded store, and come
// back byte for byte where the receiving app loads them.
import assert from 'node:assert/strict';
import { flows } from './harness.mjs';

const flow = flows();
const PICTURE = 102;
const FILE = 105;

flow('28 a picture made in the page reaches the peer, whose app loads the same bytes', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  const png = await a.makePng('photo', 800, 600);
  const sent = await a.sendPicture(bob, 'photo', { size: png.size, width: 800, height: 600 });
  const url = sent.pictureElem.sourcePicture.url;
  assert.match(url, /\/object\/.+/, `the picture's URL: ${url}`);

  const got = await b.waitForMessage(alice, PICTURE);
  assert.equal(got.pictureElem.sourcePicture.url, url);
  const loaded = await b.fetchInfo(url);
  assert.equal(loaded.status, 200);
  assert.equal(loaded.type, 'image/png');
  assert.equal(loaded.sha256, png.sha256, 'the bytes the peer loads are the bytes sent');
  assert.deepEqual([loaded.width, loaded.height], [800, 600]);
  assert.equal(a.uploads.length, 1, `one PUT for a small picture (${a.uploads})`);
});

flow('29 a 12 MB file goes up in several parts and comes back equal', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  const size = 12 * 1024 * 1024;
  const sha = await a.makeFile('big', size, 'big.bin');
  await a.sendFile(bob, 'big', { name: 'big.bin', size });
  assert.equal(a.uploads.filter((p) => p.endsWith('/part')).length, 3, `three 5 MiB parts (${a.uploads})`);

  const got = await b.waitForMessage(alice, FILE);
  const loaded = await b.fetchInfo(got.fileElem.sourceUrl);
  assert.equal(loaded.status, 200);
  assert.equal(loaded.size, size);
  assert.equal(loaded.sha256, sha);

  // The same content again is not uploaded again.
  const before = a.uploads.length;
  await a.sendFile(bob, 'big', { name: 'again.bin', size });
  assert.equal(a.uploads.length, before, 'a second upload of the same bytes sends nothing');
});

flow('30 a picture\'s snapshot URL loads a smaller thumbnail', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  const png = await a.makePng('large', 1600, 1200);
  await a.sendPicture(bob, 'large', { size: png.size, width: 1600, height: 1200 });
  const got = await b.waitForMessage(alice, PICTURE);
  const snapshot = got.pictureElem.snapshotPicture.url;
  assert.match(snapshot, /type=image/, `the SDK asks for a thumbnail: ${snapshot}`);
  const thumb = await b.fetchInfo(snapshot);
  assert.equal(thumb.status, 200);
  assert.equal(thumb.type, 'image/png');
  assert.deepEqual([thumb.width, thumb.height], [640, 480], 'scaled to fit 640 x 640, proportions kept');
  assert.ok(thumb.size < png.size, `the thumbnail (${thumb.size} bytes) is smaller than the picture (${png.size})`);
  const full = await b.fetchInfo(got.pictureElem.sourcePicture.url);
  assert.equal(full.sha256, png.sha256);
});

flow('31 an avatar upload then setSelfInfo shows the new face to others', async (s) => {
  const [alice, bob] = await s.users('alice', 'bob');
  const a = await s.device(alice);
  const b = await s.device(bob);
  const png = await a.makePng('face', 256, 256, 'face.png');
  const url = await a.uploadFile('face', 'face.png', 'image/png');
  await a.call('setSelfInfo', { faceURL: url });
  assert.equal((await a.call('getSelfUserInfo')).faceURL, url);
  const [seen] = await b.call('getUsersInfo', [alice.userID]);
  assert.equal(seen.faceURL, url);
  const loaded = await b.fetchInfo(url);
  assert.equal(loaded.sha256, png.sha256);
});
