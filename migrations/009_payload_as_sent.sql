-- An event's payload is kept as the JSON text it was accepted with, so a receiver gets the
-- `data` keys in the order the producer sent them, on the first attempt and on every retry.
-- jsonb would reorder them (shorter keys first) and drop duplicate keys on each read; json
-- keeps the text. Queries read it the same way (payload->>'order_id'); cast to jsonb
-- (payload::jsonb @> '{...}') for containment. Rewrites the events table once.
alter table events alter column payload type json using payload::json;
comment on column events.payload is
  'The payload as accepted (JSON text, keys in the order sent). Cast to jsonb for @> and friends.';
