{#-
  Every non-null `field` of `relation` (within the run's window on its `window_column`, when
  given) is a value of this column: referential integrity stated on the dimension's side.
  dbt's `relationships` on the fact would say the same, but it makes the fact's check depend on
  the dimension, which Dagster then orders between the incremental steps: stated here, a run
  builds every incremental model, then the tables (two dbt steps). The test reads a model of
  the other step, so dagster-dbt makes it no asset check: it runs in the tables' step, fails
  that step when it fails, and is recorded as an observation of both models.
-#}
{% test covers(model, column_name, relation, field, window_column=none) %}
    select f.{{ field }}
    from {{ relation }} as f
    left join (select {{ column_name }} from {{ model }}) as d
        on d.{{ column_name }} = f.{{ field }}
    where f.{{ field }} is not null
        and d.{{ column_name }} is null
        {%- if window_column %}
        and {{ window_filter('f.' ~ window_column) }}
        {%- endif %}
{% endtest %}
