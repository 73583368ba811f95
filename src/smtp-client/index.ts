/**
 * The SMTP client: connecting to an MX, STARTTLS with the NIST profile, judging what was
 * negotiated, one transaction, and classifying every failure. It decides nothing about recipients
 * (that is the outcome rule, src/outcome).
 */
export type { CertificateFacts, ChainCertificate } from './certificate';
export { classifySessionError, MxSessionError } from './classify';
export { connectCandidate, type AddressAttempt, type CandidateConnection } from './connect';
export { smtpConnector, type MxConnector } from './connector';
export { judgeSession, type SessionJudgement } from './judge';
export { closeMxSession, diagnoseHandshake, openMxSession, sessionTlsOptions, type MxSession, type MxSessionOptions, type MxTarget } from './session';
export { classifySendError, resetSession, sendTransaction, type TransactionInput } from './transaction';
export {
  connectOpportunistic,
  openOpportunisticSession,
  permissiveTlsOptions,
  type OpportunisticAttempt,
  type OpportunisticConnection,
  type OpportunisticProtection,
  type OpportunisticSession,
} from './opportunistic';
