-- ccsync 0.6: capture triggers that run as the schema owner and that no session can switch off.
--
-- Re-tracking every tracked table recreates its triggers with the arguments of ccsync.track (the trigger
-- functions take the origin from ccsync.capture_origin; the WHEN clause that let any session skip capture
-- with ccsync.bulk is gone).
select ccsync.track(format('%I.%I', schema_name, rel_name)::regclass, policy, schema_name = 'ccsync')
  from ccsync.tracked
 order by table_name;
