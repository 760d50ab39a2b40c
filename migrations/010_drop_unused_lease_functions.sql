-- The single-delivery and set-returning lease functions are no longer called: loading a batch
-- and storing events take leases with take_delivery_leases() (migration 007).
drop function acquire_delivery_lease(text, uuid, text);
drop function acquire_delivery_leases(text, uuid[], text[]);
