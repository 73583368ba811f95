import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { duration, size } from './units';

/** `ip[:port]`, `[v6]:port` or a bare IPv6 address, as accepted by dns.Resolver#setServers. */
const dnsServer = z.string().refine((value) => parseHostPort(value, 53) !== undefined, {
  message: 'expected "ip" or "ip:port" (IPv6 as "[ip]:port")',
});

const cidr = z.string().refine((value) => parseCidr(value) !== undefined, {
  message: 'expected a CIDR such as "127.0.0.0/8" or "::1/128", or a single IP address',
});

const listener = z
  .object({
    name: z.string().min(1),
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535),
    /** `implicit`: TLS from the first byte (port 465 style); `starttls`: plaintext greeting, upgrade on STARTTLS. */
    tls: z.enum(['starttls', 'implicit']),
    /** `required`: every client must AUTH before MAIL; `optional`: AUTH or a trusted network may relay. */
    auth: z.enum(['required', 'optional']),
    trustedNetworks: z.array(cidr).default([]),
    /** Refuse MAIL before STARTTLS. Turning this off is for a trusted-network-only listener on an isolated host. */
    requireTls: z.boolean().default(true),
  })
  .strict();

/** The schemes the Redis client is given: anything else (http:, a bare host, a socket path) is a config error. */
const REDIS_SCHEMES = new Set(['redis:', 'rediss:']);

const redisUrl = z
  .string()
  .min(1)
  .refine(
    (value) => {
      try {
        return REDIS_SCHEMES.has(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    // The value itself is left out: it may carry a password.
    { message: 'expected a redis:// or rediss:// URL such as "redis://127.0.0.1:6379" or "rediss://user:password@redis.example:6380"' },
  );

function redisUrlIsTls(value: string): boolean {
  try {
    return new URL(value).protocol === 'rediss:';
  } catch {
    return false;
  }
}

/** Outbound TLS levels, weakest first (see outbound.defaultLevel). */
const tlsLevel = z.enum(['encrypt', 'verify', 'portal']);

/** The default of audit.file: `audit.log` next to the queue folder (resolved by the loader once queue.path is known). */
export const AUDIT_FILE_NEXT_TO_QUEUE = '<queue.path>/../audit.log';
/** The defaults of evidence.path and reports.folder: next to the queue folder, like the audit file. */
export const EVIDENCE_PATH_NEXT_TO_QUEUE = '<queue.path>/../evidence';
export const REPORTS_FOLDER_NEXT_TO_QUEUE = '<queue.path>/../reports';

/**
 * What an admin token may do: `read` lists and shows, `operate` changes state, `content` reads message
 * bodies, `portal` is an external portal's claim/body/ack, `metrics` is /metrics and readiness details.
 */
export const ADMIN_SCOPES = ['read', 'operate', 'content', 'portal', 'metrics'] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];
/** The scopes of a token configured without `scopes` (tokens from before scopes existed). */
export const LEGACY_ADMIN_SCOPES: readonly AdminScope[] = ['read', 'operate', 'metrics'];
export const ADMIN_TOKEN_MIN_LENGTH = 16;

export const configSchema = z
  .object({
    /** Name used in the SMTP banner, EHLO, Received headers and DSNs. */
    hostname: z.string().min(1).default('sealgate.localhost'),
    queue: z
      .object({
        /** `lmdb` (default): the embedded spool in an LMDB environment under `path`; `file`: the embedded spool as one file per record; `redis`: a shared queue. */
        backend: z.enum(['file', 'redis', 'lmdb']).default('lmdb'),
        path: z.string().min(1).default('../queue'),
        /** How long a delivery lease lasts before another worker may take the job. */
        leaseTime: duration.default(120_000),
        /** How long finished messages' metadata and evidence stay for audit after their body is gone. */
        keepFinished: duration.default(7 * 86_400_000),
        /** How long damaged entries set aside (quarantined, possibly with partial bodies) are kept before the sweep deletes them. */
        quarantineRetention: duration.default(30 * 86_400_000),
        /** How long `sealgate start` retries a store it cannot open (Redis down, spool folder unwritable, disk full) before it exits 1. */
        startupTimeout: duration.default(60_000),
        redis: z
          .object({
            /** `redis://` or `rediss://` (TLS); user and password may be in the URL (never logged). */
            url: redisUrl.default('redis://127.0.0.1:6379'),
            prefix: z.string().min(1).default('sealgate'),
            /** What to do when Redis persistence cannot keep an acknowledged message: warn or refuse to start. */
            onWeakDurability: z.enum(['warn', 'refuse']).default('warn'),
            /** File holding the Redis password (a Docker/Kubernetes secret); used when the URL carries none. */
            passwordFile: z.string().min(1).nullable().default(null),
            /** TLS to Redis (`rediss://` URLs only): a CA file for a private CA, and the name to verify when it differs from the URL's host. */
            tls: z
              .object({
                ca: z.string().min(1).nullable().default(null),
                servername: z.string().min(1).nullable().default(null),
              })
              .strict()
              .prefault({}),
            /** A Redis Cluster: `url` is one seed node; the store's keys get hash tags (docs/operations.md, "Redis Cluster"). */
            cluster: z
              .object({
                enabled: z.boolean().default(false),
                /** More seed nodes besides queue.redis.url (same credentials and TLS). */
                nodes: z.array(redisUrl).default([]),
                /** Replicas that must hold a write (WAIT) before the 250 or the recorded result that relies on it; 0 does not wait. */
                replicas: z.number().int().min(0).default(1),
                /** How long to wait for them; a shortfall is a 4xx (or a held result), never an early 250. */
                replicaTimeout: duration.default(2_000),
              })
              .strict()
              .prefault({}),
          })
          .strict()
          .refine((redis) => (redis.tls.ca === null && redis.tls.servername === null) || redisUrlIsTls(redis.url), {
            message: 'queue.redis.tls is set but queue.redis.url is not a rediss:// URL',
            path: ['tls'],
          })
          .refine((redis) => !redis.cluster.enabled || !/[{}]/.test(redis.prefix), {
            message: 'queue.redis.prefix must not contain { or } with queue.redis.cluster.enabled (the store makes it the hash tag)',
            path: ['prefix'],
          })
          .prefault({}),
      })
      .strict()
      .prefault({}),
    tls: z
      .object({
        /** PEM certificate chain and key for inbound TLS; both unset means a generated development certificate. */
        cert: z.string().min(1).nullable().default(null),
        key: z.string().min(1).nullable().default(null),
      })
      .strict()
      .refine((tls) => (tls.cert === null) === (tls.key === null), { message: 'set both tls.cert and tls.key, or neither' })
      .prefault({}),
    tlsProfile: z
      .object({
        /** Also allow the static-RSA (TLS_RSA_*) suites that SP 800-52r2 lists but that give no forward secrecy. */
        allowStaticRsa: z.boolean().default(false),
        /** Override the suite list (OpenSSL names, TLS 1.3 names included); must stay within the profile unless allowNonCompliantProfile. */
        ciphers: z.array(z.string().min(1)).optional(),
        /** Override the key-exchange groups (OpenSSL names, e.g. P-256, ffdhe2048). */
        groups: z.array(z.string().min(1)).optional(),
        minVersion: z.enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
        minRsaBits: z.number().int().positive().default(2048),
        minDhBits: z.number().int().positive().default(2048),
        /** Must be true for any setting above that goes below NIST SP 800-52r2; logged as a warning at every start. */
        allowNonCompliantProfile: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    listeners: z.array(listener).min(1),
    auth: z
      .object({
        usersFile: z.string().min(1).default('users.json'),
        /** Failed AUTH attempts on one connection before it is closed with 421. */
        maxFailures: z.number().int().positive().default(3),
        /** Failed AUTH attempts from one client IP (all sessions and listeners) within failureWindow before it is put in the penalty box. */
        maxFailuresPerIp: z.number().int().positive().default(10),
        failureWindow: duration.default(15 * 60_000),
        /** How long an IP in the penalty box gets 454 for AUTH, whatever the password (trusted networks included). */
        penaltyTime: duration.default(15 * 60_000),
        /** Delay before the reply to a failed AUTH; doubles with each recent failure from the same IP, up to maxFailureDelay. */
        failureDelay: duration.default(500),
        maxFailureDelay: duration.default(8_000),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxMessageSize: size.default(50 * 1024 * 1024),
        maxRecipients: z.number().int().positive().default(100),
        maxRecipientDomains: z.number().int().positive().default(50),
        maxConnections: z.number().int().positive().default(200),
        maxConnectionsPerIp: z.number().int().positive().default(20),
        /** Idle time allowed between client commands or data chunks. */
        socketTimeout: duration.default(60_000),
        /** Time for the TLS handshake, on implicit-TLS listeners from accept and after STARTTLS. */
        tlsHandshakeTimeout: duration.default(5_000),
        /** Time from the greeting until the client starts its first command (tightens under load, see stressLoad). */
        firstCommandTimeout: duration.default(10_000),
        /** Time for one whole command line to arrive once its first byte has, besides the idle timer. */
        commandTimeout: duration.default(30_000),
        /** Fill fraction of maxConnections from which deadlines tighten and each address is held to its fair share. */
        stressLoad: z.number().gt(0).max(1).default(0.5),
        /** firstCommandTimeout once the relay is well above stressLoad. */
        stressFirstCommandTimeout: duration.default(3_000),
        /** socketTimeout once the relay is well above stressLoad. */
        stressSocketTimeout: duration.default(10_000),
        /** Fraction of maxConnections kept, above stressLoad, for addresses that hold no connection yet. */
        newAddressReserve: z.number().min(0).max(0.5).default(0.1),
        /** Whole-session cap, so a client trickling bytes cannot hold a connection forever. */
        sessionDeadline: duration.default(30 * 60_000),
        /** Time allowed for one message's DATA phase before the minimum rate applies. */
        dataGrace: duration.default(30_000),
        /** Slowest accepted DATA rate after the grace time, in bytes per second. */
        minDataRate: z.number().int().nonnegative().default(1024),
        maxHeaderSize: size.default(256 * 1024),
        /** More Received: header fields than this in a submitted message is a mail loop: refused with 554 5.4.6. */
        maxReceivedHeaders: z.number().int().positive().default(50),
        maxLineLength: z.number().int().min(1000).default(10_000),
        /** Unknown or invalid commands on one connection before it is closed with 421. */
        maxBadCommands: z.number().int().positive().default(10),
        /** Sessions closed for failed AUTH or junk commands, per client IP within abuseWindow, before that IP is refused at connect. */
        maxAbusePerIp: z.number().int().positive().default(5),
        abuseWindow: duration.default(600_000),
        /** Refuse new mail with 452 4.3.1 when the spool's disk has less free space than this. */
        minFreeDisk: size.default(256 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
    /** How the relay's process uses memory. */
    memory: z
      .object({
        /** V8's --optimize-for-size, set at start: the heap grows less under a burst (no heap limit, so a big backlog cannot crash-loop). */
        optimizeForSize: z.boolean().default(true),
        /** Upper bound on V8's young-generation semi-space, held at run time (not a heap limit: old space stays unbounded); 0 leaves V8's own (16 MiB). */
        maxSemiSpace: size.default(2 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    dns: z
      .object({
        /** Resolvers as "ip[:port]"; empty means the system's resolvers. */
        servers: z.array(dnsServer).default([]),
        timeout: duration.default(5_000),
        tries: z.number().int().positive().default(2),
        cacheSize: z.number().int().positive().default(10_000),
        /** The servers validate DNSSEC: trust the AD bit of their answers, which turns DANE on. Only for resolvers on loopback unless trustRemoteValidator. */
        validating: z.boolean().default(false),
        /** Trust the AD bit from a validating resolver that is not on a loopback address (the path to it must be secured otherwise). */
        trustRemoteValidator: z.boolean().default(false),
      })
      .strict()
      .superRefine((dns, ctx) => {
        const problem = validatingResolverProblem(dns, dns.servers);
        if (problem) ctx.addIssue({ code: 'custom', path: ['servers'], message: problem });
      })
      .prefault({}),
    /** Outbound delivery: how MX hosts are reached and how strict TLS must be by default. */
    outbound: z
      .object({
        /** SMTP port used for MX hosts (25 on the Internet; tests use an unprivileged port). */
        port: z.number().int().min(1).max(65535).default(25),
        /** TLS level for domains without a rule: `encrypt` (TLS 1.2+ with profile suites, certificate recorded), `verify` (certificate must validate and match the MX), `portal` (always divert). */
        defaultLevel: tlsLevel.default('encrypt'),
        /** Most MX hosts considered per domain, in preference order. */
        maxMxHosts: z.number().int().positive().default(5),
        /** Most IP addresses tried per domain, across all its MX hosts. */
        maxAddresses: z.number().int().positive().default(10),
        /** Also try IPv6 addresses (AAAA) of MX hosts. */
        ipv6: z.boolean().default(true),
        /** Time to open the TCP connection to one MX address. */
        connectTimeout: duration.default(30_000),
        /** Time for the SMTP greeting and for the STARTTLS handshake each. */
        greetingTimeout: duration.default(60_000),
        /** Idle time allowed on an MX connection. */
        socketTimeout: duration.default(300_000),
        /** PEM file of extra CAs trusted for MX certificates, on top of Node's roots and NODE_EXTRA_CA_CERTS. */
        extraCaFile: z.string().min(1).nullable().default(null),
      })
      .strict()
      .prefault({}),
    /** Per-domain rules, keyed by recipient domain (lower case, no trailing dot). */
    domains: z
      .record(
        z.string().min(1),
        z
          .object({
            /** TLS level for this domain; overrides outbound.defaultLevel. */
            level: tlsLevel.optional(),
            /** Next hop `host[:port]` (name or IP; IPv6 as `[ip]:port`) used instead of the domain's MX; MTA-STS is not consulted. */
            route: z
              .string()
              .refine((value) => parseRoute(value) !== undefined, { message: 'expected "host" or "host:port" (IPv6 as "[ip]:port")' })
              .optional(),
          })
          .strict(),
      )
      .default({}),
    /** The delivery workers: how many, how often, how long a message may wait. */
    delivery: z
      .object({
        /** Run delivery workers in this process (false: accept and queue only, e.g. a submission-only node). */
        enabled: z.boolean().default(true),
        /** Jobs (one message, one recipient domain) delivered at once by this process. */
        concurrency: z.number().int().positive().default(20),
        /** Jobs delivered at once to one recipient domain by this process. */
        perDestination: z.number().int().positive().default(5),
        /** How often idle workers look for due jobs (a new message wakes them at once). */
        pollInterval: duration.default(1_000),
        /** Waits between attempts of a deferred job; the last step repeats. */
        retrySchedule: z.array(duration).min(1).default([60_000, 300_000, 900_000, 1_800_000, 3_600_000, 7_200_000]),
        /** How long a message may wait for delivery before `onExpiry` applies. */
        maxQueueTime: duration.default(86_400_000),
        /** At `maxQueueTime`: divert the recipients still pending to the secure portal, or bounce them with a DSN. */
        onExpiry: z.enum(['divert', 'bounce']).default('divert'),
        /** Warn the sender (a "delayed" DSN, once per recipient) when a recipient is still deferred this long after arrival; null or 0: never. */
        delayWarning: duration.nullable().default(14_400_000),
        /** Messages sent over one MX connection before it is closed. */
        maxMessagesPerConnection: z.number().int().positive().default(100),
        /** How long an unused MX connection stays open for the next message to the same MX. */
        connectionIdleTimeout: duration.default(5_000),
        /** Let an RFC 8689 `TLS-Required: No` header lower the policy to plain opportunistic TLS. Off: regulated mail ignores it. */
        honorTlsRequiredNo: z.boolean().default(false),
        /** On shutdown, how long in-flight deliveries may finish before their leases are handed back. */
        shutdownGrace: duration.default(30_000),
      })
      .strict()
      .prefault({}),
    /** The secure-portal fallback queue. */
    fallback: z
      .object({
        /** How long a portal's claim on an item lasts before the item is offered again. */
        claimLease: duration.default(300_000),
        /** Longest a diverted message's body is kept for the portal, even if an item was never acknowledged. */
        bodyRetention: duration.default(30 * 86_400_000),
      })
      .strict()
      .prefault({}),
    /** The built-in secure portal: diverted recipients are notified and pick their message up over HTTPS. */
    portal: z
      .object({
        /** Run the portal: hand diverted recipients over to it, send notices, serve the HTTPS listener. */
        enabled: z.boolean().default(true),
        /** HTTPS listener address (the same NIST TLS profile as inbound). */
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8443),
        /** Base URL of the links in notices, e.g. https://portal.clinic.example; null: https://<host>:<port> with a warning at start. */
        publicUrl: z
          .url({ protocol: /^https$/ })
          .nullable()
          .default(null),
        /** Reverse proxies whose X-Forwarded-For is believed for the client address. */
        trustedProxies: z.array(cidr).default([]),
        /** PEM certificate chain and key for the portal; both null: the inbound certificate (tls.cert/key or the development one). */
        cert: z.string().min(1).nullable().default(null),
        key: z.string().min(1).nullable().default(null),
        /** Key-encryption keys (JSON, mode 0600), kept outside the queue folder; generated with a warning when missing. */
        keyFile: z.string().min(1).default('portal-keys.json'),
        /** Organisation named in notices and pages. */
        organisation: z.string().min(1).max(120).default('Sealgate'),
        /** Envelope and From address of notices and codes; null: portal@<hostname>. */
        noticeFrom: z.string().min(3).nullable().default(null),
        /** Subject of notices; {org} is replaced by the organisation. Never the original subject unless includeOriginalSubject. */
        noticeSubject: z.string().min(1).max(200).default('Secure message from {org}'),
        /** Put the original subject in the notice (recorded in the item's audit trail whenever used). */
        includeOriginalSubject: z.boolean().default(false),
        /** Send the recipient a notice (off: the admin tells recipients some other way). */
        notify: z.boolean().default(true),
        /** How long a portal copy can be picked up (1 to 365 days). */
        expiry: duration.default(30 * 86_400_000).refine((ms) => ms >= 86_400_000 && ms <= 365 * 86_400_000, { message: 'expected between 1d and 365d' }),
        /** Remind an unread recipient this long before expiry; null: no reminder. */
        remindBefore: duration.nullable().default(3 * 86_400_000),
        /**
         * Release on its own: when a recipient domain with unread portal copies passes the domain check again
         * (`sealgate check` verdict deliver), deliver those copies over SMTP and withdraw them, as `portal release` does.
         */
        autoRelease: z.boolean().default(false),
        /** With autoRelease: check each recipient domain at most this often. */
        autoReleaseCheckEvery: duration.default(15 * 60_000),
        /** How recipients may prove who they are: email-otp (a code sent by email) and/or secret (a passphrase from the sender). */
        methods: z
          .array(z.enum(['email-otp', 'secret']))
          .min(1)
          .default(['email-otp']),
        /** A signed-in session ends after this much inactivity, and after `sessionMax` in any case. */
        sessionIdle: duration.default(15 * 60_000),
        sessionMax: duration.default(12 * 3_600_000),
        /** DKIM signature on notices (relaxed/relaxed, rsa-sha256 or ed25519-sha256 by key type); null: unsigned. */
        dkim: z
          .object({ domain: z.string().min(1), selector: z.string().min(1), keyFile: z.string().min(1) })
          .strict()
          .nullable()
          .default(null),
        /** Per recipient domain or per sender address (lower case): notify, expiry and methods for their items. */
        overrides: z
          .record(
            z.string().min(1),
            z
              .object({
                notify: z.boolean().optional(),
                expiry: duration.refine((ms) => ms >= 86_400_000 && ms <= 365 * 86_400_000, { message: 'expected between 1d and 365d' }).optional(),
                methods: z
                  .array(z.enum(['email-otp', 'secret']))
                  .min(1)
                  .optional(),
              })
              .strict(),
          )
          .default({}),
      })
      .strict()
      .prefault({}),
    /** The audit log: one JSON line per recipient outcome, with its evidence. */
    audit: z
      .object({
        /**
         * File to append audit lines to: the evidence log's plain mirror, written after its append and before the
         * outcome is recorded, not fsynced (the evidence log is the durable record); default `audit.log` in the folder
         * that holds queue.path. null writes them to the asynchronous main log instead (may lose its tail).
         */
        file: z.string().min(1).nullable().default(AUDIT_FILE_NEXT_TO_QUEUE),
      })
      .strict()
      .prefault({}),
    /**
     * The evidence log: every recipient outcome, admin action and portal event, hash-chained, kept apart from the
     * queue (the file store's folder, or the Redis server the queue uses) and never removed by message deletion.
     */
    evidence: z
      .object({
        /** File store: the folder of daily segments, indexes and anchors; default `evidence` in the folder that holds queue.path. */
        path: z.string().min(1).default(EVIDENCE_PATH_NEXT_TO_QUEUE),
        /** A second copy of every daily anchor, one file per day, ideally on other storage (WORM, another host's mount); null: none. */
        anchorCopy: z.string().min(1).nullable().default(null),
        /** How long evidence is kept; `sealgate evidence prune` refuses to remove anything younger. Never shorter than queue.keepFinished. */
        retention: duration.default(6 * 366 * 86_400_000),
      })
      .strict()
      .prefault({}),
    /** Compliance reports (`sealgate report`) and their schedule. */
    reports: z
      .object({
        /** Write a report for the period just ended: off, daily (at 00:00 UTC), weekly (Mondays) or monthly (the 1st). */
        schedule: z.enum(['off', 'daily', 'weekly', 'monthly']).default('off'),
        /** Where scheduled reports go; default `reports` in the folder that holds queue.path. */
        folder: z.string().min(1).default(REPORTS_FOLDER_NEXT_TO_QUEUE),
        /** Formats written by the schedule. */
        formats: z
          .array(z.enum(['json', 'csv', 'html', 'pdf']))
          .min(1)
          .default(['html', 'csv']),
        /** Mail each scheduled report to these addresses (over compliant TLS only, never diverted); empty: files only. */
        mailTo: z
          .array(
            z
              .string()
              .min(3)
              .regex(/^[^@\s]+@[^@\s]+$/, 'expected an address such as compliance@example.org'),
          )
          .default([]),
        /** Envelope and From address of report mail; default `reports@<hostname>`. */
        from: z.string().min(1).nullable().default(null),
        /** DKIM key of report mail (relaxed/relaxed, no l=, RSA or Ed25519 by key type); null: report mail goes unsigned. */
        dkim: z
          .object({ domain: z.string().min(1), selector: z.string().min(1), keyFile: z.string().min(1) })
          .strict()
          .nullable()
          .default(null),
        /** How many of the busiest recipient domains the partner-posture section checks. */
        postureDomains: z.number().int().min(0).max(100).default(10),
      })
      .strict()
      .prefault({}),
    /** The admin HTTP API (queue, fallback, portal, audit, check, metrics, health). */
    admin: z
      .object({
        /** Run the admin HTTP listener in this process. */
        enabled: z.boolean().default(true),
        /** Address to listen on; anything but loopback requires at least one token. */
        host: z.string().min(1).default('127.0.0.1'),
        /** Port to listen on (0: any free port, logged in the `admin-started` line). */
        port: z.number().int().min(0).max(65535).default(8025),
        /** Bearer tokens; each request is attributed to its token's name in the audit log. */
        tokens: z
          .array(
            z
              .object({
                name: z.string().min(1).max(64),
                token: z.string().min(ADMIN_TOKEN_MIN_LENGTH, `admin tokens must be at least ${ADMIN_TOKEN_MIN_LENGTH} characters`),
                /** What the token may do; without it `read`, `operate` and `metrics` (with a warning at start). */
                scopes: z.array(z.enum(ADMIN_SCOPES)).min(1, 'give at least one scope, or leave scopes out').optional(),
              })
              .strict(),
          )
          .default([]),
        /** Serve /metrics without a token (e.g. a scraper on a trusted network); otherwise it needs the `metrics` scope. */
        publicMetrics: z.boolean().default(false),
        /** Failed token checks per client address within one minute; past that every request but /healthz gets 429 until the minute is over. */
        maxFailedAuthPerMinute: z.number().int().positive().default(10),
        /** Recipient domains with a queue-depth series of their own on /metrics; the rest are summed under domain="other". */
        metricsTopDomains: z.number().int().min(0).max(100).default(10),
      })
      .strict()
      .prefault({}),
    /** SMTP TLS Reporting (RFC 8460): daily reports of TLS successes and failures to the domains that ask (`_smtp._tls` TXT). */
    tlsrpt: z
      .object({
        /** Count TLS sessions per policy domain and send the daily reports. */
        enabled: z.boolean().default(false),
        /** The report's `organization-name`; null: the relay's hostname. */
        organizationName: z.string().min(1).nullable().default(null),
        /** The report's `contact-info` (an address or URI a domain owner can write to); null: `postmaster@<submitter>`. */
        contactInfo: z.string().min(1).nullable().default(null),
        /** The reporting domain (file names, subject, TLS-Report-Submitter, DKIM d=); null: the relay's hostname. */
        submitter: z.string().min(1).nullable().default(null),
        /** Reports of a UTC day are sent after 00:00 UTC plus a random delay of up to this much (spreads the load on receivers). */
        maxDelay: duration.default(4 * 3_600_000),
        /** DKIM key of report mail (`mailto:` rua), relaxed/relaxed, no l=; null: mailto reports are not sent (logged), https ones are. */
        dkim: z
          .object({ domain: z.string().min(1), selector: z.string().min(1), keyFile: z.string().min(1) })
          .strict()
          .nullable()
          .default(null),
        /** Envelope sender and From of report mail; null: `noreply-tlsrpt@<submitter>`. */
        from: z.string().min(3).nullable().default(null),
        /** Waits after a failed send of one report (to every rua), then it is given up (logged). */
        retrySchedule: z.array(duration).max(10).default([300_000, 1_800_000, 7_200_000, 21_600_000]),
        /** Whole-request limit of an `https:` rua POST. */
        httpsTimeout: duration.default(60_000),
        /** PEM file of extra CAs trusted for `https:` rua servers, on top of Node's roots; null: mtaSts.extraCaFile. */
        extraCaFile: z.string().min(1).nullable().default(null),
      })
      .strict()
      .prefault({}),
    /** MTA-STS (RFC 8461) discovery and policy fetching. */
    mtaSts: z
      .object({
        /** Look up and apply MTA-STS policies. */
        enabled: z.boolean().default(true),
        /** PEM file of extra CAs trusted for `mta-sts.<domain>` HTTPS servers, on top of Node's roots and NODE_EXTRA_CA_CERTS. */
        extraCaFile: z.string().min(1).nullable().default(null),
        /** Time to open the HTTPS connection for a policy fetch. */
        connectTimeout: duration.default(10_000),
        /** Whole-fetch limit (RFC 8461 suggests at most 60 s). */
        fetchTimeout: duration.default(60_000),
        /** HTTPS port of `mta-sts.<domain>`: 443 per RFC 8461; other values are for test setups. */
        port: z.number().int().min(1).max(65535).default(443),
        /** Largest policy body accepted (RFC 8461 suggests 64 KiB). */
        maxPolicySize: size.default(64 * 1024),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    // Evidence must outlive the message records it describes: a finished message's record is the last place its
    // outcome is kept besides the evidence log.
    if (config.evidence.retention < config.queue.keepFinished) {
      ctx.addIssue({ code: 'custom', path: ['evidence', 'retention'], message: 'must not be shorter than queue.keepFinished (evidence must outlive the message records)' });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type ListenerConfig = Config['listeners'][number];

export function parseHostPort(value: string, defaultPort: number): { host: string; port: number } | undefined {
  let host = value;
  let port = defaultPort;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2]) port = Number(bracketed[2]);
  } else if (isIP(value) !== 6) {
    const colon = value.lastIndexOf(':');
    if (colon > 0) {
      host = value.slice(0, colon);
      port = Number(value.slice(colon + 1));
    }
  }
  if (isIP(host) === 0 || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/** Whether a resolver address (`ip`, `ip:port`, `[ip]:port`) is on this host: 127.0.0.0/8 or ::1 (also IPv4-mapped). */
export function isLoopbackServer(server: string): boolean {
  const parsed = parseHostPort(server, 53);
  if (!parsed) return false;
  const host = parsed.host.toLowerCase().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  if (isIP(host) === 4) return host.startsWith('127.');
  return /^(0{0,4}:){2,7}0{0,3}1$/.test(host) || host === '::1';
}

/**
 * Why `dns.validating` may not be trusted with these resolvers, or null: the AD bit says the resolver validated
 * the answer, which proves nothing once the answer has crossed a network an attacker may be on. `servers` is
 * `dns.servers`, or the system's resolvers when that is empty (checked when the relay starts).
 */
export function validatingResolverProblem(dns: { validating: boolean; trustRemoteValidator: boolean }, servers: readonly string[]): string | null {
  if (!dns.validating || dns.trustRemoteValidator) return null;
  const remote = servers.filter((server) => !isLoopbackServer(server));
  if (remote.length === 0) return null;
  return (
    `dns.validating is true but ${remote.join(', ')} ${remote.length === 1 ? 'is not a loopback address' : 'are not loopback addresses'}: ` +
    'the AD bit from across a network proves nothing. Run the validating resolver on this host (127.0.0.1 or ::1) and list it in dns.servers, ' +
    'or set dns.trustRemoteValidator: true if the path to it is secured'
  );
}

/** `host[:port]` where host is a DNS name, an IPv4 address or a bracketed IPv6 address. */
export function parseRoute(value: string, defaultPort = 25): { host: string; port: number } | undefined {
  const asIp = parseHostPort(value, defaultPort);
  if (asIp) return asIp;
  const match = /^([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)\.?(?::(\d{1,5}))?$/.exec(value);
  if (!match) return undefined;
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1]!.toLowerCase(), port };
}

export function parseCidr(value: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', prefixText] = value.split('/');
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? String(max)) || prefix > max) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Builds a BlockList that answers "is this client address in one of these networks?". */
export function networkList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of cidrs) {
    const parsed = parseCidr(entry);
    if (parsed) list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  return list;
}
