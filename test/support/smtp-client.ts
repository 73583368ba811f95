import net from 'node:net';
import tls from 'node:tls';

/**
 * A raw line-level SMTP client for protocol edge cases nodemailer will not produce (bare LF,
 * source routes, unknown parameters, commands before STARTTLS). Every wait is bounded.
 */

export interface SmtpReply {
  code: number;
  lines: string[];
  /** All lines joined with \n, without the code prefixes. */
  text: string;
}

export interface RawConnectOptions {
  host?: string;
  /** Bind the client to this local address (another 127.0.0.x to look like a different client). */
  localAddress?: string;
  /** Implicit TLS from the first byte. */
  tls?: tls.ConnectionOptions;
  timeoutMs?: number;
}

export class SmtpReplyTimeout extends Error {
  override name = 'SmtpReplyTimeout';
}

export class RawSmtpClient {
  private buffer = '';
  private waiters: Array<() => void> = [];
  private ended = false;
  greeting!: SmtpReply;

  private constructor(
    private socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    this.attach(socket);
  }

  static async connect(port: number, opts: RawConnectOptions = {}): Promise<RawSmtpClient> {
    const host = opts.host ?? '127.0.0.1';
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const plain = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host, port, localAddress: opts.localAddress }, () => resolve(s));
      s.once('error', reject);
    });
    const tlsOptions = opts.tls;
    const socket = !tlsOptions
      ? plain
      : await new Promise<net.Socket>((resolve, reject) => {
          const s = tls.connect({ ...tlsOptions, socket: plain }, () => resolve(s));
          s.once('error', (err: Error) => {
            plain.destroy();
            reject(err);
          });
        });
    const client = new RawSmtpClient(socket, timeoutMs);
    client.greeting = await client.readReply();
    return client;
  }

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
  }

  get closed(): boolean {
    return this.ended;
  }

  private attach(socket: net.Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.wake();
    });
    socket.on('error', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private waitForInput(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const left = deadline - Date.now();
      if (left <= 0) return reject(new SmtpReplyTimeout('no SMTP reply in time'));
      const timer = setTimeout(() => reject(new SmtpReplyTimeout('no SMTP reply in time')), left);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Reads one complete (possibly multi-line) reply. */
  async readReply(): Promise<SmtpReply> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const reply = this.takeReply();
      if (reply) return reply;
      if (this.ended) throw new Error(`connection closed before a complete reply (buffer: ${JSON.stringify(this.buffer)})`);
      await this.waitForInput(deadline);
    }
  }

  private takeReply(): SmtpReply | undefined {
    const lines: string[] = [];
    let offset = 0;
    for (;;) {
      const end = this.buffer.indexOf('\r\n', offset);
      if (end < 0) return undefined;
      const line = this.buffer.slice(offset, end);
      offset = end + 2;
      lines.push(line);
      if (/^\d{3}( |$)/.test(line)) {
        this.buffer = this.buffer.slice(offset);
        return { code: Number(line.slice(0, 3)), lines, text: lines.map((l) => l.slice(4)).join('\n') };
      }
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string): Promise<SmtpReply> {
    this.write(`${line}\r\n`);
    return this.readReply();
  }

  /** STARTTLS, then the TLS handshake over the same socket. Rejects if the handshake fails. */
  async startTls(options: tls.ConnectionOptions): Promise<SmtpReply> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) return reply;
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ ...options, socket: plain }, () => resolve(s));
      s.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
    return reply;
  }

  /** Waits (bounded) until the server closes the connection. */
  async waitClosed(): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    while (!this.ended) await this.waitForInput(deadline);
  }

  close(): void {
    this.socket.destroy();
  }
}
