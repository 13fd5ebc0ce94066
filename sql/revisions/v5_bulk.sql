-- ccsync 0.5: the capture triggers skip the reconciler's own set-wise apply statements.
--
-- The reconciler marks those statements with the setting ccsync.bulk = 'on' and journals their changes
-- itself from its staging table (on the cloud), or not at all (on a node). What triggers and foreign-key
-- cascades change below such a statement (pg_trigger_depth() > 0) is still captured by the triggers.
-- Re-tracking every tracked table recreates its triggers with the WHEN clause of ccsync.track.
select ccsync.track(format('%I.%I', schema_name, rel_name)::regclass, policy, schema_name = 'ccsync')
  from ccsync.tracked
 order by table_name;
