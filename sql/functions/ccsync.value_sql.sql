-- ----------------------------------------------------------------------
-- Function: ccsync.value_sql(2)
--
--      The SQL expression of a value's canonical form in a row image
--      (design-0.2 §1, invariant 9): the same value gives the same JSON
--      whatever the writing session's settings, as long as the expression
--      runs with the capture settings (TimeZone UTC, DateStyle ISO, YMD,
--      IntervalStyle postgres, extra_float_digits 3, bytea_output hex,
--      lc_monetary C):
--
--      - smallint, integer, bigint, numeric, boolean, text, varchar, char(n),
--        uuid, date, timestamp, timestamptz, time, timetz: the value itself
--        (jsonb_build_object and to_jsonb keep numbers exact, times ISO);
--      - any other type (floats, arrays with their bounds, json, jsonb, bytea,
--        interval, money, enums, domains, composites, ranges, hstore...):
--        a JSON string of the type's text output, so float -0, NaN and every
--        digit survive, and the jsonb document `null` differs from SQL NULL.
--
--      A value is applied back with (image ->> 'col')::<the column's type>:
--      its type's input function, for every type.
--
-- Parameters:
--      p_type   the column's type
--      p_expr   the SQL expression of the value (e.g. n."id")
--
-- Returns:
--      text: an expression to put in jsonb_build_object
-- ----------------------------------------------------------------------
create or replace function ccsync.value_sql(p_type regtype, p_expr text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select case when p_type in ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype, 'numeric'::regtype,
                                'boolean'::regtype, 'text'::regtype, 'character varying'::regtype,
                                'character'::regtype, 'uuid'::regtype, 'date'::regtype,
                                'timestamp without time zone'::regtype, 'timestamp with time zone'::regtype,
                                'time without time zone'::regtype, 'time with time zone'::regtype)
                then p_expr
                else p_expr || '::text'
           end
$$;
