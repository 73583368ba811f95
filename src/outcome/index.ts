export * from './codes';
export { decideOutcomes, endsAttempts, sharedCause, type CandidateAttempt, type Decision, type OutcomeInput, type OutcomePlan, type TriedAddress } from './decide';
