-- ccsync 0.8, before its functions are loaded: functions whose arguments changed go, so that a call cannot
-- match both the former and the new one.
drop function if exists ccsync.row_image_sql(regclass, text);
