-- ----------------------------------------------------------------------
-- Function: ccsync.json_as_text(3)
--
--      Replaces the json (not jsonb) columns of a row image by their exact
--      text, as a JSON string: jsonb would reorder keys and drop spaces,
--      and the replica must get the document exactly as it was written.
--
-- Parameters:
--      p_row       the row as jsonb (to_jsonb(row))
--      p_raw       the same row as json (row_to_json(row)), which keeps
--                  the text of json columns verbatim
--      p_columns   the json columns
--
-- Returns:
--      jsonb: p_row with each json column as a JSON string; a SQL NULL
--      stays null (so does a column holding the bare JSON document
--      `null`, the one value that cannot be told apart from it here)
-- ----------------------------------------------------------------------
create or replace function ccsync.json_as_text(p_row jsonb, p_raw json, p_columns text[])
returns jsonb
language sql
immutable
as $$
    select p_row || coalesce(jsonb_object_agg(c, to_jsonb((p_raw -> c)::text)), '{}')
      from unnest(p_columns) as c
     where (p_raw ->> c) is not null
$$;
