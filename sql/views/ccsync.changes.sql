-- ----------------------------------------------------------------------
-- View: ccsync.changes
--
--      The journal, for DBAs and scripts (documented in the README).
--
-- Columns:
--      id          journal id (a sequence: NOT commit order; read by txid)
--      txid        source transaction id (xid8, pg_current_xact_id())
--      hlc         hybrid logical clock: (epoch ms << 16) + counter
--      hlc_time    the wall-clock part of hlc as a timestamptz
--      origin      database the change was made on ('cloud' or a node)
--      table_name  qualified table, quoted as in SQL: public."Odd Table"
--      op          I insert, U update, D delete, T truncate
--      pk          primary key of the row before the change (jsonb)
--      old         old values: changed columns (U), whole row (D)
--      new         new values: changed columns (U), whole row (I)
--
--      The journal keeps whole row images; an update's changed columns are
--      derived here (ccsync.changed).
-- ----------------------------------------------------------------------
create or replace view ccsync.changes as
select j.id,
       j.txid,
       j.hlc,
       to_timestamp((j.hlc >> 16) / 1000.0) as hlc_time,
       j.origin,
       j.table_name,
       j.op::text as op,
       j.pk,
       case when j.op = 'U' then ccsync.changed(j.new, j.old) else j.old end as old,
       case when j.op = 'U' then ccsync.changed(j.old, j.new) else j.new end as new
  from ccsync.journal as j;
