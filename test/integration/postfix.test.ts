import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { parse } from 'yaml';
import { equivalentRelayConfig, postfixUnavailableReason, startPostfix, type PostfixInstance } from '../support/postfix';
import { REPO_ROOT, relayFixture, runCli, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { leafCertificate, standardScenarios, startWorld, type World } from '../support/world';

/**
 * The deployment docs, run as written against a real relay and the test world:
 * - Debian's Postfix, configured with the snippets of docs/postfix.md (read at test time), relays to
 *   Sealgate; Sealgate delivers over compliant TLS and diverts what it must. Only host names, ports
 *   and /etc/postfix/ paths of the snippets are replaced. Needs root (skipped otherwise).
 * - The nodemailer script of docs/applications.md, run with node as-is (settings by environment).
 */

const DOC_HOST = 'sealgate.example.org';
const POSTFIX_DOC = path.join(REPO_ROOT, 'docs', 'postfix.md');
const APPLICATIONS_DOC = path.join(REPO_ROOT, 'docs', 'applications.md');
const SASL_PASSWORD = 'postfix-test-password';
const APP_PASSWORD = 'app-test-password';

/** The fenced code block that follows `<!-- marker -->` in a Markdown file. */
function docSnippet(file: string, marker: string): string {
  const text = readFileSync(file, 'utf8');
  const at = text.indexOf(`<!-- ${marker} -->`);
  if (at < 0) throw new Error(`no "<!-- ${marker} -->" in ${file}`);
  const block = /```[^\n]*\n([\s\S]*?)```/.exec(text.slice(at));
  if (!block) throw new Error(`no code block after "<!-- ${marker} -->" in ${file}`);
  return block[1]!;
}

/** The doc's Postfix text with its relayhost, port and /etc/postfix/ paths pointed at this test. */
function forTest(snippet: string, docPort: number, sealgatePort: number, configDir: string): string {
  return snippet.replaceAll(`[${DOC_HOST}]:${docPort}`, `[127.0.0.1]:${sealgatePort}`).replaceAll('/etc/postfix/', `${configDir}/`);
}

/** Sealgate's listeners from the doc, bound to loopback port 0 and trusting this host's loopback. */
function sealgateListeners(): Array<Record<string, unknown>> {
  const doc = parse(docSnippet(POSTFIX_DOC, 'sealgate.yaml: postfix-listeners')) as { listeners: Array<Record<string, unknown>> };
  return doc.listeners.map((l) => ({ ...l, host: '127.0.0.1', port: 0, ...(l.trustedNetworks ? { trustedNetworks: ['127.0.0.1/32'] } : {}) }));
}

async function submitToPostfix(postfix: PostfixInstance, recipients: string[], tag: string): Promise<void> {
  // Postfix's smtpd here is the MTA's inbound side (no TLS configured): plain SMTP on loopback.
  const transport = nodemailer.createTransport({ host: postfix.host, port: postfix.port, secure: false, ignoreTLS: true });
  try {
    const raw =
      `From: Clinic <clinic@sender.test>\r\nTo: undisclosed-recipients:;\r\nSubject: results ${tag}\r\nMessage-ID: <${tag}@sender.test>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour results are ready.\r\n`;
    const info = await transport.sendMail({ envelope: { from: 'clinic@sender.test', to: recipients }, raw });
    expect(info.response).toMatch(/^250 /);
  } finally {
    transport.close();
  }
}

async function waitForFallback(configFile: string, recipient: string, messageId: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await runCli(['--config', configFile, 'fallback', 'list', '--json']);
    if (result.code === 0) {
      const items = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
      const item = items.find((i) => i.recipient === recipient && i.messageId === messageId);
      if (item) return item;
    }
    if (Date.now() > deadline) throw new Error(`${recipient} of ${messageId} not in the fallback list in time: ${result.stdout} ${result.stderr}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const unavailable = postfixUnavailableReason();
if (unavailable) console.warn(`Skipping the Postfix integration tests: ${unavailable}`);
const describePostfix = unavailable ? describe.skip : describe;

describe('deployment docs against a running relay', () => {
  let world: World;
  let fixture: RelayFixture;
  let relay: RelayProcess;
  const instances: PostfixInstance[] = [];

  beforeAll(async () => {
    world = await startWorld(standardScenarios());
    const cert = await leafCertificate('valid', DOC_HOST);
    fixture = relayFixture({
      ...world.relayConfig(),
      hostname: DOC_HOST,
      tls: { cert: 'tls-cert.pem', key: 'tls-key.pem' },
      // The doc's Postfix listeners, plus implicit TLS for the application example.
      listeners: [...sealgateListeners(), { name: 'submissions', host: '127.0.0.1', port: 0, tls: 'implicit', auth: 'required' }],
      delivery: { retrySchedule: ['1s'], pollInterval: '200ms' },
    });
    writeFileSync(path.join(fixture.dir, 'tls-cert.pem'), cert.cert);
    writeFileSync(path.join(fixture.dir, 'tls-key.pem'), cert.key, { mode: 0o600 });
    relay = await startRelayProcess(fixture.configFile);
    for (const [user, password] of [
      ['postfix', SASL_PASSWORD],
      ['billing-app', APP_PASSWORD],
    ] as const) {
      const added = await runCli(['--config', fixture.configFile, 'user', 'add', user], { input: `${password}\n` });
      expect(added.code).toBe(0);
    }
  }, 60_000);

  afterAll(async () => {
    for (const instance of instances) await instance.stop();
    await relay?.stop();
    await world?.stop();
    fixture?.remove();
  }, 60_000);

  describePostfix('Postfix with Sealgate as its smarthost, configured as docs/postfix.md says', () => {
    async function postfixWith(marker: string, docPort: number, sealgatePort: number, extraFiles: Record<string, string> = {}): Promise<PostfixInstance> {
      // The config dir is only known once the instance exists: write paths as $config_directory.
      const mainCf = forTest(docSnippet(POSTFIX_DOC, marker), docPort, sealgatePort, '$config_directory');
      const instance = await startPostfix({ mainCf, files: { 'sealgate-ca.pem': world.caPem, ...extraFiles } });
      instances.push(instance);
      return instance;
    }

    test('trusted network (2525): compliant domains delivered over TLS 1.3/1.2, a STARTTLS-less domain diverted', async () => {
      const postfix = await postfixWith('postfix-main.cf: smarthost-trusted', 2525, relay.ports.smarthost!);
      await submitToPostfix(postfix, ['patient@tls13.test', 'patient@tls12.test', 'patient@nostarttls.test'], 'pf-trusted');

      const tls13 = await world.mx('mx1.tls13.test').waitFor((m) => m.raw.includes('<pf-trusted@sender.test>'), 30_000);
      expect(tls13.tls).toMatchObject({ protocol: 'TLSv1.3', servername: 'mx1.tls13.test' });
      expect(tls13.rcptTo).toEqual(['patient@tls13.test']);
      // It went through Postfix, then Sealgate.
      expect(tls13.raw.toString()).toMatch(/by postfix\.sealgate\.test \(Postfix\)/);
      expect(tls13.raw.toString()).toMatch(new RegExp(`by ${DOC_HOST.replaceAll('.', '\\.')}`));
      const tls12 = await world.mx('mx1.tls12.test').waitFor((m) => m.raw.includes('<pf-trusted@sender.test>'), 30_000);
      expect(tls12.tls).toMatchObject({ protocol: 'TLSv1.2', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256' });

      const diverted = await waitForFallback(fixture.configFile, 'patient@nostarttls.test', '<pf-trusted@sender.test>', 30_000);
      expect(diverted).toMatchObject({ from: 'clinic@sender.test', reason: 'starttls-not-offered' });
      expect(world.mx('mx1.nostarttls.test').received).toHaveLength(0);

      // Postfix verified Sealgate's certificate (level secure) and handed the message over without AUTH.
      const accepted = relay.logs.find((l) => l.event === 'message-accepted' && l.listener === 'smarthost');
      expect(accepted).toBeDefined();
      expect(accepted!.user).toBeUndefined();
      await postfix.waitForLog(/status=sent \(250 /);
      expect(postfix.log()).toMatch(/Verified TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: TLSv1\.[23]/);
    }, 90_000);

    test('SASL (2587): Postfix authenticates as a Sealgate user over verified TLS', async () => {
      const sealgatePort = relay.ports.submission!;
      const postfix = await postfixWith('postfix-main.cf: smarthost-sasl', 2587, sealgatePort, {
        sasl_passwd: forTest(docSnippet(POSTFIX_DOC, 'postfix-sasl_passwd'), 2587, sealgatePort, '').replace('change-this-password', SASL_PASSWORD),
      });
      await submitToPostfix(postfix, ['patient@tls13.test', 'patient@nostarttls.test'], 'pf-sasl');

      const tls13 = await world.mx('mx1.tls13.test').waitFor((m) => m.raw.includes('<pf-sasl@sender.test>'), 30_000);
      expect(tls13.tls).toMatchObject({ protocol: 'TLSv1.3' });
      await waitForFallback(fixture.configFile, 'patient@nostarttls.test', '<pf-sasl@sender.test>', 30_000);

      await postfix.waitForLog(/status=sent \(250 /);
      expect(postfix.log()).toMatch(/Verified TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+/);
      expect(relay.logs).toContainEqual(expect.objectContaining({ event: 'auth', listener: 'submission', user: 'postfix' }));
    }, 90_000);
  });

  describePostfix('Postfix as the equivalent TLS-enforcing relay (the baseline of the benchmark)', () => {
    test('delivers over NIST TLS straight to the sinks and keeps non-compliant destinations deferred', async () => {
      const domains = ['tls13.test', 'tls12.test', 'chacha.test', 'nostarttls.test'];
      const transports = Object.fromEntries(domains.map((d) => [d, `${world.addressOf(`mx1.${d}`)}:${world.smtpPort}`]));
      const cert = await leafCertificate('valid', 'postfix.sealgate.test');
      const postfix = await startPostfix(equivalentRelayConfig({ transports, ...cert }));
      instances.push(postfix);

      const transport = nodemailer.createTransport({
        host: postfix.host,
        port: postfix.port,
        secure: false,
        requireTLS: true,
        tls: { servername: 'postfix.sealgate.test', ca: world.caPem, minVersion: 'TLSv1.2' },
      });
      try {
        const raw = `From: clinic@sender.test\r\nSubject: equivalent\r\nMessage-ID: <pf-equivalent@sender.test>\r\n\r\nbody\r\n`;
        await transport.sendMail({ envelope: { from: 'clinic@sender.test', to: domains.map((d) => `patient@${d}`) }, raw });
      } finally {
        transport.close();
      }

      const tls13 = await world.mx('mx1.tls13.test').waitFor((m) => m.raw.includes('<pf-equivalent@sender.test>'), 30_000);
      expect(tls13.tls).toMatchObject({ protocol: 'TLSv1.3' });
      expect(['TLS_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256']).toContain(tls13.tls!.cipher);
      const tls12 = await world.mx('mx1.tls12.test').waitFor((m) => m.raw.includes('<pf-equivalent@sender.test>'), 30_000);
      expect(tls12.tls).toMatchObject({ protocol: 'TLSv1.2', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256' });

      // ChaCha20-only and STARTTLS-less sinks: Postfix defers instead of delivering.
      await postfix.waitForLog(/to=<patient@chacha\.test>.*status=deferred/);
      await postfix.waitForLog(/to=<patient@nostarttls\.test>.*status=deferred/);
      expect(world.mx('mx1.chacha.test').received).toHaveLength(0);
      expect(world.mx('mx1.nostarttls.test').received).toHaveLength(0);
    }, 90_000);
  });

  describe('docs/applications.md: the nodemailer script', () => {
    async function runScript(tls: 'starttls' | 'implicit', port: number, subject: string) {
      const script = path.join(fixture.dir, 'send-via-sealgate.js');
      // The doc's script, unchanged except for the subject (to find this message at the MX).
      writeFileSync(script, docSnippet(APPLICATIONS_DOC, 'nodemailer: send-via-sealgate.js').replace("'Your appointment'", JSON.stringify(subject)));
      return promisify(execFile)(process.execPath, [script], {
        timeout: 20_000,
        env: {
          ...process.env,
          NODE_PATH: path.join(REPO_ROOT, 'node_modules'),
          SEALGATE_HOST: '127.0.0.1',
          SEALGATE_PORT: String(port),
          SEALGATE_TLS: tls,
          SEALGATE_USER: 'billing-app',
          SEALGATE_PASSWORD: APP_PASSWORD,
          SEALGATE_CA: world.caFile,
          MAIL_FROM: 'clinic@sender.test',
          MAIL_TO: 'patient@tls13.test',
        },
      });
    }

    test.each([
      ['starttls', 'submission'],
      ['implicit', 'submissions'],
    ] as const)(
      '%s on the %s listener: accepted, authenticated, delivered over TLS 1.3',
      async (tls, listener) => {
        const subject = `app-${tls}`;
        const { stdout } = await runScript(tls, relay.ports[listener]!, subject);
        expect(stdout).toMatch(/^accepted: 250 .*queued as \S+/m);
        const arrived = await world.mx('mx1.tls13.test').waitFor((m) => m.raw.includes(`Subject: ${subject}`), 30_000);
        expect(arrived.tls).toMatchObject({ protocol: 'TLSv1.3' });
        expect(relay.logs).toContainEqual(expect.objectContaining({ event: 'auth', listener, user: 'billing-app' }));
      },
      60_000,
    );
  });
});
