// Admission control from measured capacity: a new session is admitted only if the model runtime's
// measured load, plus what one more session is predicted to add (the current average per session),
// stays under a ceiling. Refusing a newcomer (503 + Retry-After) keeps existing sessions in budget;
// the deadline scheduler would otherwise degrade everyone.

export interface AdmissionInput {
  /** Measured fraction of time the inference workers are busy (0..1). */
  utilization: number;
  /** Live sessions producing that load. */
  sessions: number;
  /** Highest predicted utilization to admit (e.g. 0.85). */
  ceiling: number;
}

export type AdmissionVerdict = { admit: true } | { admit: false; predicted: number };

export function admission({ utilization, sessions, ceiling }: AdmissionInput): AdmissionVerdict {
  // With no session yet there is nothing measured to protect: the first one is always admitted.
  if (sessions === 0) return { admit: true };
  const predicted = utilization + utilization / sessions;
  return predicted <= ceiling ? { admit: true } : { admit: false, predicted };
}
