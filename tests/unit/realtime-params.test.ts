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
    assert.throws(
      () => parseParamsPatch(input, limits),
      (e: unknown) => e instanceof ParamsError && message.test(e.message),
      JSON.stringify(input),
    );
  }
});

test('prompt and seed blends: lists of 1–4 weighted parts, null to clear, and clear errors otherwise', () => {
  assert.deepEqual(
    parseParamsPatch(
      {
        promptBlend: [
          { prompt: 'a cat', weight: 1 },
          { prompt: 'a dog', weight: 0.5 },
        ],
      },
      limits,
    ),
    {
      promptBlend: [
        { prompt: 'a cat', weight: 1 },
        { prompt: 'a dog', weight: 0.5 },
      ],
    },
  );
  assert.deepEqual(parseParamsPatch({ seedBlend: [{ seed: 7, weight: 2 }], promptBlend: null }, limits), {
    seedBlend: [{ seed: 7, weight: 2 }],
    promptBlend: null,
  });
  const bad: Array<[unknown, RegExp]> = [
    [{ promptBlend: [] }, /list of 1 to 4/],
    [{ promptBlend: 'a cat' }, /list of 1 to 4/],
    [{ promptBlend: Array.from({ length: 5 }, () => ({ prompt: 'x', weight: 1 })) }, /list of 1 to 4/],
    [{ promptBlend: [{ prompt: 'x', weight: 0 }] }, /at least one weight must be positive/],
    [{ promptBlend: [{ prompt: 'x', weight: -1 }] }, /weight must be a number from 0 to 1000/],
    [{ promptBlend: [{ prompt: 3, weight: 1 }] }, /each prompt must be a string/],
    [{ promptBlend: [{ prompt: 'x', weight: 1, extra: true }] }, /unexpected extra/],
    [{ seedBlend: [{ seed: 1.5, weight: 1 }] }, /each seed must be an integer/],
    [{ seedBlend: [null] }, /list of 1 to 4/],
  ];
  for (const [input, message] of bad)
    assert.throws(
      () => parseParamsPatch(input, limits),
      (e: unknown) => e instanceof ParamsError && message.test(e.message),
      JSON.stringify(input),
    );
});
