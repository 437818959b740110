// The front door's signed redirect tickets: valid once, for one method and path, until they expire.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signTicket, TICKET_TTL_MS, TicketVerifier } from '../../server/cluster/redirect-ticket.js';

test('a ticket opens one request: same token, method and path, before expiry, once', () => {
  const now = 1_000_000;
  const ticket = signTicket('s3cret', 'POST', '/whip/cam', now);
  const verifier = new TicketVerifier('s3cret');
  assert.equal(new TicketVerifier('other').verify('POST', '/whip/cam', ticket, now), false, 'another token');
  assert.equal(verifier.verify('POST', '/whip/other', ticket, now), false, 'another path');
  assert.equal(verifier.verify('DELETE', '/whip/cam', ticket, now), false, 'another method');
  assert.equal(verifier.verify('POST', '/whip/cam', ticket, now + TICKET_TTL_MS + 1), false, 'expired');
  assert.equal(verifier.verify('POST', '/whip/cam', `${now + 5000}.${ticket.split('.')[1]}`, now), false, 'expiry tampered');
  assert.equal(verifier.verify('POST', '/whip/cam', 'garbage', now), false);
  assert.equal(verifier.verify('POST', '/whip/cam', ticket, now + 10), true);
  assert.equal(verifier.verify('POST', '/whip/cam', ticket, now + 20), false, 'a replay');
});
