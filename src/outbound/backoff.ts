/**
 * When a deferred job is tried again: the schedule's step for this attempt (the last step repeats),
 * with up to 10% jitter so many deferrals to one domain do not retry in lockstep.
 */
export function nextRetryAt(attempts: number, schedule: readonly number[], now: number, random: () => number = Math.random): number {
  if (schedule.length === 0) throw new Error('the retry schedule is empty');
  const step = schedule[Math.min(Math.max(attempts, 1), schedule.length) - 1]!;
  return now + Math.round(step * (1 + random() * 0.1));
}

/** True once a message has waited in the queue longer than allowed. */
export function hasExpired(receivedAt: number, maxQueueTime: number, now: number): boolean {
  return now - receivedAt >= maxQueueTime;
}
