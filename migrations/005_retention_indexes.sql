-- The retention sweep (src/retention/) deletes old events in batches. dlq.event_id references
-- events (on delete cascade), so deleting an event makes PostgreSQL look for its dead letters by
-- event_id, and the sweep itself checks that an event has none before taking it. Without an
-- index each of those lookups reads the whole dlq table: once per event removed.
create index dlq_event_idx on dlq (event_id);
