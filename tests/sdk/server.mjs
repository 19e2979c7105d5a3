// Our server for the flows: `openim standalone` started in a fresh temporary directory on free
// ports, or one already running (OPENIM_API_ADDR and OPENIM_WS_ADDR). Users and tokens come from
// the REST API, as an app's business server would get them.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// `cargo build -p openim` puts it here (CARGO_TARGET_DIR, or the workspace's target/).
const DEFAULT_BIN = path.join(process.env.CARGO_TARGET_DIR ?? path.join(REPO, 'target'), 'debug/openim');
const ADMIN = { userID: 'imAdmin', secret: 'openIM123' };

export async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

export class Server {
  /** Starts `openim standalone`, or uses the server named by OPENIM_API_ADDR / OPENIM_WS_ADDR. */
  static async start() {
    if (process.env.OPENIM_API_ADDR) {
      const server = new Server(process.env.OPENIM_API_ADDR, process.env.OPENIM_WS_ADDR ?? 'ws://127.0.0.1:10001');
      await server.waitReady();
      return server;
    }
    const bin = process.env.OPENIM_BIN ?? DEFAULT_BIN;
    if (!existsSync(bin)) throw new Error(`no server binary at ${bin}: build it, or set OPENIM_BIN or OPENIM_API_ADDR`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'openim-sdk-flows-'));
    const [api, admin, ws, gwRpc] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const log = openSync(path.join(dir, 'server.log'), 'a');
    const child = spawn(bin, ['--config', path.join(REPO, 'config'), 'standalone'], {
      cwd: dir, // data lives in ./data
      env: {
        ...process.env,
        OPENIM_API__LISTEN: `127.0.0.1:${api}`,
        OPENIM_API__ADMIN_LISTEN: `127.0.0.1:${admin}`,
        OPENIM_MSGGATEWAY__LISTEN: `127.0.0.1:${ws}`,
        OPENIM_MSGGATEWAY__RPC_LISTEN: `127.0.0.1:${gwRpc}`,
      },
      stdio: ['ignore', log, log],
    });
    const server = new Server(`http://127.0.0.1:${api}`, `ws://127.0.0.1:${ws}`);
    server.child = child;
    server.dir = dir;
    child.on('exit', (code, signal) => { server.exited = { code, signal }; });
    await server.waitReady();
    return server;
  }

  constructor(apiAddr, wsAddr) {
    this.apiAddr = apiAddr.replace(/\/$/, '');
    this.wsAddr = wsAddr.replace(/\/$/, '');
  }

  logTail(lines = 40) {
    if (!this.dir) return '';
    return readFileSync(path.join(this.dir, 'server.log'), 'utf8').split('\n').slice(-lines).join('\n');
  }

  async waitReady(timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exited) throw new Error(`openim exited at start (${JSON.stringify(this.exited)}):\n${this.logTail()}`);
      try {
        if ((await fetch(`${this.apiAddr}/healthz`)).ok) return;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`no /healthz from ${this.apiAddr} within ${timeoutMs} ms\n${this.logTail()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop() {
    if (this.child && !this.exited) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (!this.exited) this.child.kill('SIGKILL');
    }
    if (this.dir && !process.env.OPENIM_KEEP_DATA) rmSync(this.dir, { recursive: true, force: true });
  }

  /** A REST call as OpenIM's clients make it; returns `data`, throws on a non-200 or errCode. */
  async post(route, body, token = '') {
    const res = await fetch(this.apiAddr + route, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', operationID: `flows-${Date.now()}`, token },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    if (res.status !== 200 || !json || json.errCode !== 0) {
      throw new Error(`POST ${route} -> HTTP ${res.status}: ${text.slice(0, 300)}`);
    }
    return json.data;
  }

  async adminToken() {
    this.admin ??= (await this.post('/auth/get_admin_token', ADMIN)).token;
    return this.admin;
  }

  /** A REST call with the administrator's token. */
  async asAdmin(route, body) {
    return this.post(route, body, await this.adminToken());
  }

  async registerUsers(users) {
    await this.asAdmin('/user/user_register', { users });
  }

  async userToken(userID, platformID) {
    return (await this.asAdmin('/auth/get_user_token', { userID, platformID })).token;
  }
}
