import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ParamsError, parseParamsPatch } from '../../realtime/params.js';

const limits = { styles: ['cartoon', 'sketch'], steps: [1, 2, 3, 4] };

test('a valid patch is returned with only the given keys', () => {
  assert.deepEqual(parseParamsPatch({ style: 'sketch', strength: 0.5, steps: 2 }, limits), {
    style: 'sketch',
    strength: 0.5,
    steps: 2,
  });
});

test('each bad value is refused with a message naming the field and the accepted values', () => {
  const cases: Array<[unknown, RegExp]> = [
    [[], /JSON object/],
    [null, /JSON object/],
    [{ style: 'oil' }, /style must be one of: cartoon, sketch/],
    [{ strength: 1.5 }, /strength must be a number from 0 to 1/],
    [{ strength: 'high' }, /strength/],
    [{ steps: 8 }, /steps must be one of: 1, 2, 3, 4/],
    [{ steps: 1.5 }, /steps/],
    [{ seed: -1 }, /seed must be an integer/],
    [{ consistency: Number.NaN }, /consistency/],
    [{ similarityFilter: 'yes' }, /similarityFilter/],
    [{ colour: 'red' }, /unknown parameter "colour"/],
  ];
  for (const [input, message] of cases) {
    assert.throws(() => parseParamsPatch(input, limits), (e: unknown) => e instanceof ParamsError && message.test(e.message), JSON.stringify(input));
  }
});
