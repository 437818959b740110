import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admission } from '../../realtime/admission.js';

test('the first session is always admitted', () => {
  assert.deepEqual(admission({ utilization: 0.99, sessions: 0, ceiling: 0.85 }), { admit: true });
});

test('a session is admitted while measured load plus one more session stays under the ceiling', () => {
  // One session keeps the model 35% busy: a second is predicted at 70%.
  assert.deepEqual(admission({ utilization: 0.35, sessions: 1, ceiling: 0.85 }), { admit: true });
});

test('a session that would push the predicted load over the ceiling is refused', () => {
  // Two sessions at 70%: a third is predicted at 105%.
  const verdict = admission({ utilization: 0.7, sessions: 2, ceiling: 0.85 });
  assert.equal(verdict.admit, false);
  assert.ok(!verdict.admit && Math.abs(verdict.predicted - 1.05) < 1e-9);
});
