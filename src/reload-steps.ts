import { dequal } from 'dequal';
import type { ReloadStep } from './config/live';
import type { Config } from './config/schema';
import type { UserDirectory } from './auth/users';
import type { Logger } from './log/logger';
import type { InboundRuntime } from './inbound/server';
import { policyChanged, type PolicyRuntime } from './policy';
import { buildTlsProfile, type TlsProfile } from './policy/tls-profile';

/**
 * The reload steps relay.ts registers on the live config, one per part that holds derived state. Each
 * prepares everything that can fail (profile, certificates, users file, trust stores) and returns a switch
 * that cannot; work already started (an SMTP session, a delivery job, a portal connection) keeps the
 * config and derived state it started with. The settings they take over are listed in LIVE_KEYS.
 */

type Certificate = { key: string | Buffer; cert: string | Buffer };

/** The TLS profile of a new config: the running one when `tlsProfile` did not change (parts compare it by identity). */
export function nextProfile(next: Config, previous: Config, running: TlsProfile): TlsProfile {
  return dequal(next.tlsProfile, previous.tlsProfile) ? running : buildTlsProfile(next.tlsProfile);
}

/** Where a step reads and records what is running now (relay.ts keeps these). */
export interface RunningParts {
  profile: TlsProfile;
  policy: PolicyRuntime;
  inboundTls: Certificate;
}

/**
 * Outbound: a new policy runtime (resolver, MTA-STS, planner, session options) when a policy setting
 * changed or an extra CA file is configured (read again), and the delivery engine and scheduler switched
 * over, so the next job plans under the new domain levels and routes while jobs in flight keep theirs.
 */
export function outboundStep(deps: {
  running: RunningParts;
  rebuild(next: Config, previous: Config, profile: TlsProfile): PolicyRuntime;
  engine: { reconfigure(config: Config, policy: PolicyRuntime): void };
  scheduler: { configure(limits: { concurrency: number; perDestination: number; idlePollMs: number }): void };
  logger: Logger;
}): ReloadStep {
  return {
    name: 'outbound',
    prepare: (next, previous) => {
      const profile = nextProfile(next, previous, deps.running.profile);
      // The extra CA files are read again like the certificates: a CA bundle updated in place is taken over.
      const caFiles = next.outbound.extraCaFile !== null || next.mtaSts.extraCaFile !== null;
      const policy = policyChanged(previous, next) || caFiles ? deps.rebuild(next, previous, profile) : deps.running.policy;
      return () => {
        if (profile !== deps.running.profile) {
          for (const problem of profile.nonCompliance) {
            deps.logger.warn({ event: 'tls-profile-noncompliant', problem }, 'TLS profile goes below NIST SP 800-52r2 (allowNonCompliantProfile is set)');
          }
        }
        deps.running.policy = policy;
        deps.engine.reconfigure(next, policy);
        deps.scheduler.configure({ concurrency: next.delivery.concurrency, perDestination: next.delivery.perDestination, idlePollMs: next.delivery.pollInterval });
      };
    },
  };
}

/** The portal's HTTPS listener, for listenersStep: its certificate follows portal.cert/key, or the inbound one. */
export interface PortalTlsPort<O> {
  loadCertificate(next: Config, inbound: Certificate): Promise<Certificate>;
  /** The HTTPS options for this profile and certificate; throws (naming the keys) when they do not go together. */
  check(profile: TlsProfile, tls: Certificate): O;
  setTls(options: O): void;
}

/**
 * The listeners (SMTP and the portal's HTTPS): certificates re-read from tls.cert/key and portal.cert/key at
 * every reload (a renewed certificate at the same path is the usual case; the development certificate is
 * kept while none is configured), the users file read and checked, the secure contexts built; then new
 * connections get them while open ones keep theirs. Registered after outboundStep (this one moves
 * `running.profile` on).
 */
export function listenersStep<O>(deps: {
  running: RunningParts;
  loadCertificate(next: Config): Promise<Certificate>;
  openUsers(file: string): Promise<UserDirectory>;
  checkTls(profile: TlsProfile, tls: Certificate): void;
  inbound: { reconfigure(next: InboundRuntime): void };
  portal?: PortalTlsPort<O>;
}): ReloadStep {
  return {
    name: 'listeners',
    prepare: async (next, previous) => {
      const profile = nextProfile(next, previous, deps.running.profile);
      const keepDevelopment = next.tls.cert === null && previous.tls.cert === null;
      const tls = keepDevelopment ? deps.running.inboundTls : await deps.loadCertificate(next);
      let users: UserDirectory;
      try {
        users = await deps.openUsers(next.auth.usersFile);
      } catch (err) {
        throw new Error(`auth.usersFile: ${(err as Error).message}`, { cause: err });
      }
      deps.checkTls(profile, tls);
      const portal = deps.portal;
      const portalOptions = portal ? portal.check(profile, await portal.loadCertificate(next, tls)) : undefined;
      return () => {
        deps.inbound.reconfigure({ config: next, profile, users, tls });
        if (portal) portal.setTls(portalOptions as O);
        deps.running.inboundTls = tls;
        deps.running.profile = profile;
      };
    },
  };
}
