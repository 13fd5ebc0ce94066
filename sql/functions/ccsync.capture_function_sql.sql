-- ----------------------------------------------------------------------
-- Function: ccsync.capture_function_sql(3)
--
--      The CREATE FUNCTION statement of a table's capture trigger function,
--      with the table's columns written out (design-0.2 §2): statement-level
--      for INSERT, UPDATE and DELETE (the transition tables cc_new, cc_old),
--      BEFORE TRUNCATE. Each statement of the application is journaled by
--      one set-based statement (ccsync.capture_sql). No catalog read and no
--      dynamic SQL per row.
--
--      The function runs as its owner (SECURITY DEFINER), with a fixed
--      search_path, and with the capture settings of ccsync.value_sql when
--      a column's canonical form depends on them: a table whose columns are
--      all of the types whose JSON form no setting changes (numbers, text,
--      boolean, uuid, date, timestamp, time, timetz) saves setting six
--      settings per statement. Origin and the no-echo rule (design-0.2 §2):
--      - on a node, nothing is journaled only when the session sets
--        ccsync.apply = 'on' and its login role is one of the node's apply
--        roles (ccsync.apply_roles); anything else is journaled with the
--        node's name;
--      - on the cloud nothing is skipped: the origin is the node of the
--        connected role (ccsync.caller_node), else 'cloud'; ccsync's own
--        replicated tables are always journaled as 'cloud'.
--      depth is pg_trigger_depth() in the trigger: 1 for a statement of a
--      session, more for a statement run by a trigger (a foreign-key
--      cascade), whose entries are written before those of its cause.
--      A statement notifies the services (ccsync.notify_journal) when the
--      session's last notification is 50 ms old or more and older than its
--      transaction (so a transaction notifies at most once, and the mark
--      stays at its first statement); the others only compare two clocks
--      with a setting. Every test made per statement is a
--      plain expression, which PL/pgSQL evaluates without a query: the
--      clock value (ccsync.hlc_next, inlined), the notification's age, and
--      on a node whether the session applies (the apply roles are read only
--      when it says so). Only the shape check and the journal insert run a
--      query.
--
--      A bulk statement's journal insert runs without JIT and with 64 MB
--      of work memory (two settings on the function, about half a
--      microsecond each per statement): the planner cannot estimate the
--      transition tables' pairing (an update's old and new rows, joined on
--      their positions), so a 100,000-row update's insert was costed as
--      fifty million rows and JIT-compiled (about 0.5 s where JIT is
--      available, as on Debian's PostgreSQL 15), and its two sorts went to
--      disk past the default 4 MB.
--
--      A table altered since it was tracked (a column added, dropped,
--      renamed, or of another type) is still captured, never refused: the
--      function compares the table's shape (ccsync.table_shape_sql, one
--      index scan of pg_attribute per statement) with the shape it was
--      generated for, and when they differ it runs the same statement
--      written from the catalog as it is now (dynamic SQL: slower, the
--      same images), in the capture settings, the session's own put back
--      after it. `ccsync track` again brings back the written-out path.
--
-- Parameters:
--      p_table     the table
--      p_self      this database's identity ('cloud' or the node's name)
--      p_internal  one of ccsync's replicated tables
--
-- Returns:
--      text: the statement (executed by ccsync.track)
--
-- Tables:
--      pg_attribute, pg_index (read, through ccsync.row_image_sql)
-- ----------------------------------------------------------------------
create or replace function ccsync.capture_function_sql(p_table regclass, p_self text, p_internal boolean)
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $body$
declare
    v_name   text := (select format('%I.%I', n.nspname, c.relname)
                        from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
                       where c.oid = p_table);
    v_shape  text;
    v_origin text;
    v_sets   text := '';
begin
    if exists (select 1 from pg_attribute as a
                where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped
                  and a.atttypid not in ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                                         'numeric'::regtype, 'boolean'::regtype, 'text'::regtype,
                                         'character varying'::regtype, 'character'::regtype, 'uuid'::regtype,
                                         'date'::regtype, 'timestamp without time zone'::regtype,
                                         'time without time zone'::regtype, 'time with time zone'::regtype)) then
        v_sets := $s$
set timezone = 'UTC'
set datestyle = 'ISO, YMD'
set intervalstyle = 'postgres'
set extra_float_digits = 3
set bytea_output = 'hex'
set lc_monetary = 'C'$s$;
    end if;
    execute 'select ' || ccsync.table_shape_sql('$1') into v_shape using p_table;
    if p_self <> 'cloud' then
        -- two tests, so that a session that is not applying reads only the setting (one 'if' on a NULL setting
        -- with the EXISTS beside it would run the EXISTS's query at every statement)
        v_origin := format($o$if current_setting('ccsync.apply', true) = 'on' then
        if exists (select 1 from ccsync.apply_roles as a where a.role = session_user) then
            return null;
        end if;
    end if;
    v_origin := %L;$o$, p_self);
    elsif p_internal then
        v_origin := $o$v_origin := 'cloud';$o$;
    else
        v_origin := $o$v_origin := coalesce(ccsync.caller_node(), 'cloud');$o$;
    end if;
    return format($f$create or replace function %1$s()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set jit = off
set work_mem = '64MB'%11$s
as $ccsync$
-- the capture of %2$s, generated by ccsync.track (ccsync.capture_function_sql)
declare
    v_origin text;
    v_depth  smallint := pg_trigger_depth();
    v_saved  text[];
    v_hlc    bigint;
begin
    %3$s
    if coalesce(nullif(current_setting('ccsync.notified_at', true), '')::double precision, 0)
       < least(date_part('epoch', clock_timestamp()) - 0.05, date_part('epoch', transaction_timestamp())) then
        perform ccsync.notify_journal();
    end if;
    if tg_op = 'TRUNCATE' then
        %4$s;
        return null;
    end if;
    if %5$s is distinct from %6$L then
        -- altered since tracked: the same statement, written from the catalog as it is now, in the capture
        -- settings (whatever the columns' types are now), the session's own put back after it
        v_saved := array[current_setting('TimeZone'), current_setting('DateStyle'), current_setting('IntervalStyle'),
                         current_setting('extra_float_digits'), current_setting('bytea_output'),
                         current_setting('lc_monetary')];
        perform set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true),
                set_config('IntervalStyle', 'postgres', true), set_config('extra_float_digits', '3', true),
                set_config('bytea_output', 'hex', true), set_config('lc_monetary', 'C', true);
        execute ccsync.capture_sql(tg_relid, %7$L, tg_op, '$1', '$2') using v_origin, v_depth;
        perform set_config('TimeZone', v_saved[1], true), set_config('DateStyle', v_saved[2], true),
                set_config('IntervalStyle', v_saved[3], true), set_config('extra_float_digits', v_saved[4], true),
                set_config('bytea_output', v_saved[5], true), set_config('lc_monetary', v_saved[6], true);
        return null;
    end if;
    v_hlc := ccsync.hlc_next();
    if tg_op = 'INSERT' then
        %8$s;
    elsif tg_op = 'UPDATE' then
        %9$s;
    else
        %10$s;
    end if;
    return null;
end;
$ccsync$
$f$,
        ccsync.capture_function(v_name), v_name, v_origin,
        ccsync.capture_sql(p_table, v_name, 'TRUNCATE', 'v_origin', 'v_depth'),
        ccsync.table_shape_sql('tg_relid'), v_shape, v_name,
        ccsync.capture_sql(p_table, v_name, 'INSERT', 'v_origin', 'v_depth', 'v_hlc'),
        ccsync.capture_sql(p_table, v_name, 'UPDATE', 'v_origin', 'v_depth', 'v_hlc'),
        ccsync.capture_sql(p_table, v_name, 'DELETE', 'v_origin', 'v_depth', 'v_hlc'), v_sets);
end;
$body$;
