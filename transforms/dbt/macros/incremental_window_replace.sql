{#-
  Incremental strategy `window_replace`: delete every row of the run's window from the target,
  then insert the freshly built window. Why not dbt-duckdb's delete+insert: that deletes by the
  keys of the new rows, so a row whose key vanished from the window (a duplicate merged away, a
  record deleted upstream, a reading moved to another local day by a zone change) would stay;
  here a window run always equals a full refresh of that window.
  When the run names its subjects (those whose raw data changed), only their rows of the window
  are replaced: window_filter limits both this delete and what every model reads to them.
  Model config: window_column (a local date column, default local_date), window_before_days and
  window_after_days (how far the model's own window reaches beyond the run's window).
-#}
{% macro get_incremental_window_replace_sql(arg_dict) %}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set predicate = window_filter(
        config.get('window_column', 'local_date'),
        config.get('window_before_days', 0),
        config.get('window_after_days', 0)
    ) -%}
    delete from {{ arg_dict['target_relation'] }} where {{ predicate }};
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{% endmacro %}
