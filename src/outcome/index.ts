export * from './codes';
export { decideOutcomes, endsAttempts, sharedCause, type CandidateAttempt, type Decision, type OutcomeInput, type OutcomePlan, type TriedAddress } from './decide';
export { decideCompliantOnlyOutcomes, decideNoticeOutcomes, deliveryMode, type DeliveryMode, type NoticeOutcomeInput } from './notice';
