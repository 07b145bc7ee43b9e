{#-
  Every non-null `field` of `relation` (within the run's window on its `window_column`, when
  given) is a value of this column: referential integrity stated on the dimension's side.
  dbt's `relationships` on the fact would say the same, but it would make the fact's check
  (a daily, partitioned model) wait for the dimension (a whole table): stated here, it is an
  asset check of the dimension, run once the dimension is built.
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
