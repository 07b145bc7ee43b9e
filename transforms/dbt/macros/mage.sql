{#-
  MAGE placeholder: one null per trace. iglu's default mage(version='ma') finds turning points
  where a 5- and a 32-point moving average cross, then walks the extrema with two state machines
  (calculate_mage_plus / _minus) whose every step depends on the last; that walk is not yet
  written in SQL (a recursive CTE over each segment's extrema would do it), and no Python UDF is
  available to dbt-duckdb's profile here, so the mart says "not computed" rather than give a
  different MAGE under iglu's name.
-#}
{% macro mage_ma(grid, partition_by) -%}
    select distinct {{ partition_by | join(', ') }}, null::double as mage from {{ grid }}
{%- endmacro %}
