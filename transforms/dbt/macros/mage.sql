{% macro mage_ma(grid, partition_by) -%}
    select distinct {{ partition_by | join(', ') }}, null::double as mage from {{ grid }}
{%- endmacro %}
