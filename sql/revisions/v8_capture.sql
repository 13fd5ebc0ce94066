-- ccsync tables, revision 0008: capture with full row images in canonical form (design-0.2 §1-2).
--
-- Overview
--   ccsync.journal.depth  pg_trigger_depth() in the capture trigger: 1 for a statement of a session, more for a
--                         statement run by a trigger (a foreign-key cascade), written before its cause's
--                         entry; NULL for entries of earlier revisions
--
-- The images journaled before are rewritten in the canonical form (ccsync.convert_images) and every tracked
-- table gets its generated capture function (ccsync.track); the generic trigger functions go.

alter table ccsync.journal add column depth smallint;

select ccsync.convert_images();

select ccsync.track(format('%I.%I', schema_name, rel_name)::regclass, policy, schema_name = 'ccsync')
  from ccsync.tracked
 order by table_name;

drop function if exists ccsync.capture_row();
drop function if exists ccsync.capture_insert();
drop function if exists ccsync.capture_truncate();
drop function if exists ccsync.capture_origin(text, boolean);
drop function if exists ccsync.json_as_text(jsonb, json, text[]);
