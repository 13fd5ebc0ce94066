-- ----------------------------------------------------------------------
-- Function: ccsync.track(3)
--
--      Starts capturing the changes of a table, or changes its policy.
--      Generates the table's capture function with its columns written
--      out (ccsync.capture_function_sql); after an ALTER TABLE of a tracked
--      table its writes are captured through a slower path until it is
--      tracked again. Creates the capture triggers (ENABLE
--      ALWAYS, so that they fire even under session_replication_role =
--      replica) and records the table in ccsync.tracked. Idempotent.
--
--      The trigger function runs as the schema's owner (SECURITY DEFINER),
--      so any role that may write the table is captured, and no session
--      can switch capture off (ccsync.capture_function_sql says what is
--      skipped).
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
    v_pk       text[];
    v_function text;
    v_owner    text;
    v_trigger  text;
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

    v_function := ccsync.capture_function(v_name);
    execute ccsync.capture_function_sql(p_table, v_self, p_internal);
    execute format('revoke all on function %s() from public', v_function);
    execute format('comment on function %s() is %L', v_function, 'ccsync: the capture of ' || v_name);
    select n.nspowner::regrole::text into v_owner from pg_namespace as n where n.nspname = 'ccsync';
    if v_owner <> current_user then  -- (track run by a superuser) the function runs as the schema's owner
        execute format('alter function %s() owner to %s', v_function, v_owner);
    end if;
    foreach v_trigger in array array['ccsync_capture_row', 'ccsync_capture_insert', 'ccsync_capture_update',
                                     'ccsync_capture_delete', 'ccsync_capture_truncate'] loop
        execute format('drop trigger if exists %I on %I.%I', v_trigger, v_schema, v_rel);
    end loop;
    execute format('create trigger ccsync_capture_insert after insert on %I.%I referencing new table as cc_new '
                   'for each statement execute function %s()', v_schema, v_rel, v_function);
    execute format('create trigger ccsync_capture_update after update on %I.%I '
                   'referencing old table as cc_old new table as cc_new '
                   'for each statement execute function %s()', v_schema, v_rel, v_function);
    execute format('create trigger ccsync_capture_delete after delete on %I.%I referencing old table as cc_old '
                   'for each statement execute function %s()', v_schema, v_rel, v_function);
    execute format('create trigger ccsync_capture_truncate before truncate on %I.%I '
                   'for each statement execute function %s()', v_schema, v_rel, v_function);
    foreach v_trigger in array array['ccsync_capture_insert', 'ccsync_capture_update', 'ccsync_capture_delete',
                                     'ccsync_capture_truncate'] loop
        execute format('alter table %I.%I enable always trigger %I', v_schema, v_rel, v_trigger);
    end loop;

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
