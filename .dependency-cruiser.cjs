/**
 * Module dependency direction: run with `npm run lint:deps`, part of `npm run lint`.
 *
 *   cli ─▶ relay.ts (composition root) ─▶ admin ─▶ inbound / outbound / fallback / portal / tlsrpt / report
 *     ─▶ smtp-client / policy / outcome / evidence / store / auth ─▶ config      (log: a leaf anyone may use)
 *
 * Imports point down only. Type-only imports count too (tsPreCompilationDeps), so a lower module that needs an
 * upper module's type must declare its own narrow interface instead (e.g. a metrics observer wired in relay.ts).
 */
const LOWER = 'config|log|auth|store|policy|smtp-client|outcome|evidence|mail';
const MIDDLE = 'inbound|outbound|fallback|portal|tlsrpt|report';
const RELAY = '^src/relay\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles hide which module owns what; break them with an interface the lower module declares.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'lower-imports-upper',
      severity: 'error',
      comment: 'config, log, auth, store, policy, smtp-client, outcome and evidence may not import inbound, outbound, fallback, portal, tlsrpt, admin, cli or relay.ts.',
      from: { path: `^src/(${LOWER})/` },
      to: { path: [`^src/(${MIDDLE}|admin|cli)/`, RELAY] },
    },
    {
      name: 'middle-imports-admin-or-cli',
      severity: 'error',
      comment: 'inbound, outbound, fallback and portal may not import admin, cli or relay.ts (metrics and health go through observer interfaces wired in relay.ts).',
      from: { path: `^src/(${MIDDLE})/` },
      to: { path: ['^src/(admin|cli)/', RELAY] },
    },
    {
      name: 'admin-imports-cli',
      severity: 'error',
      comment: 'The CLI is a client of admin views and actions, never the other way round.',
      from: { path: '^src/admin/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'relay-imported-outside-cli',
      severity: 'error',
      comment: 'relay.ts is the composition root: only the CLI (`sealgate start`) imports it.',
      from: { pathNot: '^src/cli/' },
      to: { path: RELAY },
    },
    {
      name: 'log-is-a-leaf',
      severity: 'error',
      comment: 'Everyone may use log; log imports nothing else from src.',
      from: { path: '^src/log/' },
      to: { path: '^src/', pathNot: '^src/log/' },
    },
    {
      name: 'config-imports-only-log',
      severity: 'error',
      comment: 'config is the bottom layer: it may use log only.',
      from: { path: '^src/config/' },
      to: { path: '^src/', pathNot: '^src/(config|log)/' },
    },
    {
      name: 'store-imports-only-config-and-log',
      severity: 'error',
      comment: 'The store knows nothing of SMTP, policy or delivery.',
      from: { path: '^src/store/' },
      to: { path: '^src/', pathNot: '^src/(store|config|log)/' },
    },
    {
      name: 'policy-imports-smtp-client-or-outbound',
      severity: 'error',
      comment: 'policy (DNS, MX, MTA-STS, plans) does not open SMTP sessions: the SMTP client uses policy, not the reverse.',
      from: { path: '^src/policy/' },
      to: { path: '^src/(smtp-client|outbound)/' },
    },
    {
      name: 'fallback-imports-admin-cli-or-outbound',
      severity: 'error',
      comment: 'fallback owns diverted recipients; it does not deliver and does not know its callers.',
      from: { path: '^src/fallback/' },
      to: { path: '^src/(admin|cli|outbound)/' },
    },
    {
      name: 'portal-imports-inbound-or-outbound',
      severity: 'error',
      comment: 'The portal builds on fallback and the store; outbound reports notice outcomes through its observer, inbound hands it nothing.',
      from: { path: '^src/portal/' },
      to: { path: '^src/(inbound|outbound)/' },
    },
    {
      name: 'tlsrpt-imports-only-store-policy-config-log',
      severity: 'error',
      comment:
        'TLS reporting counts what the delivery engine reports through its TlsSessionObserver (wired in relay.ts); it builds on store, policy, config, log and mail (the DKIM signer) only, plus the TlsSessionFacts shape both sides share (evidence/tls-session.ts).',
      from: { path: '^src/tlsrpt/' },
      to: { path: '^src/', pathNot: ['^src/(tlsrpt|store|policy|config|log|mail)/', '^src/evidence/tls-session\\.ts$'] },
    },
    {
      name: 'report-imports-only-store-evidence-config-log-mail',
      severity: 'error',
      comment:
        'Compliance reports are built from the evidence log (store) and rendered; the partner-posture check is handed in by the admin API or the CLI, so report never imports delivery, policy or the portal.',
      from: { path: '^src/report/' },
      to: { path: '^src/', pathNot: ['^src/(report|store|evidence|config|log|mail)/'] },
    },
    {
      name: 'message-path-imports-report',
      severity: 'error',
      comment: 'Reports read what the message path recorded; the message path never depends on reporting.',
      from: { path: '^src/(inbound|outbound|smtp-client|fallback|portal|tlsrpt|policy)/' },
      to: { path: '^src/report/' },
    },
    {
      name: 'outbound-imports-tlsrpt',
      severity: 'error',
      comment: 'Delivery reports TLS sessions through its own observer interface; it never imports the reporting module.',
      from: { path: '^src/(outbound|smtp-client|inbound|fallback|portal)/' },
      to: { path: '^src/tlsrpt/' },
    },
    {
      name: 'outcome-is-pure',
      severity: 'error',
      comment: 'The outcome rule and its vocabulary (attempt classes, reason codes) are pure: they may import only types, and only from policy and the store model.',
      from: { path: '^src/outcome/' },
      to: { path: '^src/', pathNot: '^src/(outcome|policy|store)/' },
    },
    {
      name: 'outcome-imports-only-types',
      severity: 'error',
      comment: 'The outcome rule is one pure function: what it takes from policy and the store model is types only.',
      from: { path: '^src/outcome/' },
      to: { path: '^src/(policy|store)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'outcome-does-no-io',
      severity: 'error',
      comment: 'The outcome rule does no I/O: no Node built-in modules.',
      from: { path: '^src/outcome/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'outcome-used-by-delivery-and-check-only',
      severity: 'error',
      comment: 'The outcome rule is called by delivery and `sealgate check` (outbound, cli); the SMTP client classifies failures and the evidence records attempts in its vocabulary.',
      from: { path: '^src/', pathNot: ['^src/(outcome|outbound|smtp-client|evidence|cli)/', RELAY] },
      to: { path: '^src/outcome/' },
    },
    {
      name: 'not-to-dev-dep',
      severity: 'error',
      comment: 'Production code may not load devDependencies (npm ci --omit=dev would break it).',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'not-in-package-json',
      severity: 'error',
      comment: 'A package imported by src/ must be listed in package.json, not reached through another package.',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve is a typo or a moved file.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // Resolve packages as CommonJS Node does (nodemailer's `exports` map has only import/require conditions).
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['require', 'node', 'default', 'types'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
