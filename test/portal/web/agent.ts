import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

/** A browser stand-in over app.inject: keeps cookies (honouring Max-Age=0 / Expires) and the last page's CSRF token. */
export class Agent {
  readonly cookies = new Map<string, string>();
  csrf: string | undefined;
  last: LightMyRequestResponse | undefined;

  constructor(
    private readonly app: FastifyInstance,
    private readonly headers: Record<string, string> = { 'user-agent': 'jest-agent/1.0' },
    private readonly remoteAddress = '127.0.0.1',
  ) {}

  private absorb(res: LightMyRequestResponse): LightMyRequestResponse {
    for (const c of res.cookies as { name: string; value: string; maxAge?: number; expires?: Date }[]) {
      if (c.maxAge === 0 || (c.expires && c.expires.getTime() <= Date.now()) || c.value === '') this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    const match = /name="_csrf" value="([^"]+)"/.exec(res.body);
    if (match) this.csrf = match[1];
    this.last = res;
    return res;
  }

  async get(url: string, extra: { method?: 'GET' | 'HEAD'; headers?: Record<string, string> } = {}): Promise<LightMyRequestResponse> {
    return this.absorb(
      await this.app.inject({ method: extra.method ?? 'GET', url, headers: { ...this.headers, ...extra.headers }, cookies: Object.fromEntries(this.cookies), remoteAddress: this.remoteAddress }),
    );
  }

  async post(url: string, form: Record<string, string> = {}, opts: { csrf?: string | null; headers?: Record<string, string> } = {}): Promise<LightMyRequestResponse> {
    const token = opts.csrf === undefined ? this.csrf : opts.csrf;
    const payload = new URLSearchParams({ ...(token ? { _csrf: token } : {}), ...form }).toString();
    return this.absorb(
      await this.app.inject({
        method: 'POST',
        url,
        payload,
        headers: { ...this.headers, 'content-type': 'application/x-www-form-urlencoded', ...opts.headers },
        cookies: Object.fromEntries(this.cookies),
        remoteAddress: this.remoteAddress,
      }),
    );
  }

  /** Link → /open → POST /open: ends on the method choice (pre-authenticated). */
  async open(token: string): Promise<void> {
    await this.get(`/m/${token}`);
    await this.get('/open');
    const res = await this.post('/open');
    if (res.statusCode !== 303) throw new Error(`POST /open gave ${res.statusCode}`);
    await this.get('/verify');
  }

  async requestCode(): Promise<LightMyRequestResponse> {
    const res = await this.post('/otp/send');
    if (res.statusCode === 303) await this.get('/verify?sent=1');
    return res;
  }
}
