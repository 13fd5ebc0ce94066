-- ccsync, revision 0015: a capture with fewer queries per statement (issue 16).
--
-- Overview
--   No table changes. ccsync.capture_sql takes the statement's clock value as a sixth parameter (with a
--   default: the subquery it wrote before), so its five-parameter form goes; the functions are then loaded
--   again and every tracked table's capture function is written again (revisions/capture_functions.sql),
--   CREATE OR REPLACE FUNCTION only: no lock on the tracked tables. A capture function written by an
--   earlier revision calls ccsync.capture_sql with five arguments, which the new form takes too, until it is
--   written again in the same transaction.

drop function if exists ccsync.capture_sql(regclass, text, text, text, text);
