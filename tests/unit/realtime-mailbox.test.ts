import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatestWinsMailbox } from '../../realtime/mailbox.js';

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('a newer frame replaces the waiting one while the consumer is busy, and the replaced one is counted dropped', async () => {
  const consumed: number[] = [];
  const dropped: number[] = [];
  const gates: Array<{ promise: Promise<void>; resolve(): void }> = [];
  const mailbox = new LatestWinsMailbox<number>(
    async (n) => {
      consumed.push(n);
      const g = deferred();
      gates.push(g);
      await g.promise;
    },
    (n) => dropped.push(n),
  );
  mailbox.put(1); // starts immediately
  mailbox.put(2); // waits
  mailbox.put(3); // replaces 2
  mailbox.put(4); // replaces 3
  assert.deepEqual(consumed, [1]);
  assert.deepEqual(dropped, [2, 3]);
  gates[0]!.resolve();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(consumed, [1, 4]);
  gates[1]!.resolve();
  await new Promise((r) => setImmediate(r));
  assert.equal(mailbox.isBusy, false);
});

test('a consumer that throws does not stop the mailbox', async () => {
  const consumed: number[] = [];
  const mailbox = new LatestWinsMailbox<number>(
    async (n) => {
      consumed.push(n);
      if (n === 1) throw new Error('boom');
    },
    () => undefined,
  );
  mailbox.put(1);
  await new Promise((r) => setImmediate(r));
  mailbox.put(2);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(consumed, [1, 2]);
});

test('close drops the waiting frame and accepts no more', async () => {
  const dropped: number[] = [];
  const g = deferred();
  const consumed: number[] = [];
  const mailbox = new LatestWinsMailbox<number>(
    async (n) => {
      consumed.push(n);
      await g.promise;
    },
    (n) => dropped.push(n),
  );
  mailbox.put(1);
  mailbox.put(2);
  mailbox.close();
  mailbox.put(3);
  g.resolve();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(consumed, [1]);
  assert.deepEqual(dropped, [2]);
});
