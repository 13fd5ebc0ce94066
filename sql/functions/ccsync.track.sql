-- ----------------------------------------------------------------------
-- Function: ccsync.track(2)
--
--      Starts capturing the changes of a table, or changes its policy.
--      Run it again after ALTER TABLE changes the primary key or adds a
--      json column (the triggers carry both as arguments).
--      Creates the capture triggers (ENABLE ALWAYS, so that they fire
--      even under session_replication_role = replica) and records the
--      table in ccsync.tracked. Idempotent.
--
--      The trigger functions run as their owner (SECURITY DEFINER), so
--      any role that may write the table is captured, and no session can
--      switch capture off (ccsync.capture_origin says what is skipped).
--      The roles registered in ccsync.nodes and ccsync.app_roles are
--      granted the table (ccsync.regrant).
--
-- Parameters:
--      p_table     the table
--      p_policy    conflict policy: manual, cloud-wins, node-wins, latest-wins
--      p_internal  true for ccsync's own replicated tables (ccsync.conflicts)
--
-- Returns:
--      text: the table's qualified name as stored in the journal
--
-- Errors (SQLSTATE):
--      CC001  ccsync is not installed (no identity)
--      CC002  the table has no primary key
--      CC003  not a plain table, or a ccsync table
--      22023  unknown policy
--
-- Tables:
--      ccsync.identity (read), ccsync.tracked (upsert), pg_catalog (read),
--      grants on the table (ccsync.regrant)
-- ----------------------------------------------------------------------
create or replace function ccsync.track(p_table regclass, p_policy text default 'manual',
                                        p_internal boolean default false)
returns text
language plpgsql
as $$
declare
    v_self   text;
    v_schema text;
    v_rel    text;
    v_kind   "char";
    v_name   text;
    v_pk     text[];
    v_json   text[];
    v_args   text;
begin
    select name into v_self from ccsync.identity;
    if v_self is null then
        raise exception 'ccsync has no identity in this database: run ccsync install first'
            using errcode = 'CC001';
    end if;
    if p_policy is null or p_policy not in ('manual', 'cloud-wins', 'node-wins', 'latest-wins') then
        raise exception 'unknown policy "%": use manual, cloud-wins, node-wins or latest-wins', p_policy
            using errcode = '22023';
    end if;
    select n.nspname, c.relname, c.relkind
      into v_schema, v_rel, v_kind
      from pg_class as c
      join pg_namespace as n on n.oid = c.relnamespace
     where c.oid = p_table;
    v_name := format('%I.%I', v_schema, v_rel);
    if v_kind <> 'r' or (v_schema = 'ccsync') <> p_internal then
        raise exception '% is not a plain table of the application: only ordinary tables can be tracked', v_name
            using errcode = 'CC003';
    end if;
    select array_agg(a.attname::text order by k.ord)
      into v_pk
      from pg_index as i
      cross join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
      join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
     where i.indrelid = p_table and i.indisprimary;
    if v_pk is null then
        raise exception 'table % has no primary key: ccsync needs one to identify rows; add one (ALTER TABLE % ADD PRIMARY KEY (...)) and track it again', v_name, v_name
            using errcode = 'CC002';
    end if;

    select coalesce(array_agg(a.attname::text order by a.attnum), '{}')
      into v_json
      from pg_attribute as a
     where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped and a.atttypid = 'json'::regtype;
    select string_agg(quote_literal(x), ', ')
      into v_args
      from unnest(array[v_self, p_internal::text, cardinality(v_pk)::text] || v_pk || v_json) as x;
    execute format('drop trigger if exists ccsync_capture_row on %I.%I', v_schema, v_rel);
    execute format('drop trigger if exists ccsync_capture_insert on %I.%I', v_schema, v_rel);
    execute format('drop trigger if exists ccsync_capture_truncate on %I.%I', v_schema, v_rel);
    execute format('create trigger ccsync_capture_row after update or delete on %I.%I '
                   'for each row execute function ccsync.capture_row(%s)', v_schema, v_rel, v_args);
    execute format('create trigger ccsync_capture_insert after insert on %I.%I '
                   'referencing new table as ccsync_new '
                   'for each statement execute function ccsync.capture_insert(%s)', v_schema, v_rel, v_args);
    execute format('create trigger ccsync_capture_truncate before truncate on %I.%I '
                   'for each statement execute function ccsync.capture_truncate(%L, %L)',
                   v_schema, v_rel, v_self, p_internal::text);
    execute format('alter table %I.%I enable always trigger ccsync_capture_row', v_schema, v_rel);
    execute format('alter table %I.%I enable always trigger ccsync_capture_insert', v_schema, v_rel);
    execute format('alter table %I.%I enable always trigger ccsync_capture_truncate', v_schema, v_rel);

    insert into ccsync.tracked (table_name, schema_name, rel_name, pk_columns, policy)
    values (v_name, v_schema, v_rel, v_pk, p_policy)
    on conflict (table_name) do update
       set pk_columns = excluded.pk_columns, policy = excluded.policy;
    if not p_internal then
        perform ccsync.regrant(p_table);
    end if;
    return v_name;
end;
$$;
