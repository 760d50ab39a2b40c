-- acquire_delivery_leases counts a tenant's leases on every claim. Leases are inserted and
-- deleted hundreds of times a second, and autovacuum visits a table at most once a minute, so
-- the table holds thousands of dead rows between visits. A sequential or bitmap scan reads
-- every one of them on every count (measured: ~10,000 dead rows, 1–6 ms a count, a quarter of
-- the claim statement). An index scan marks the dead entries it meets, and later counts skip
-- them: the function reads delivery_leases by index only.
alter function acquire_delivery_leases(text, uuid[], text[])
  set enable_seqscan = off
  set enable_bitmapscan = off;
