{#-
  The International Consensus targets (var consensus_targets, and the wear target: min_days days
  with low_wear_pct wear), as `meets_<target>_target` flags over a relation that has the metric
  columns. A metric that is null (no readings) meets no target.
-#}
{% macro consensus_flags() -%}
    {%- for t in var('consensus_targets') %}
    coalesce({{ t.metric }} {{ t.comparator }} {{ t.threshold }}, false) as meets_{{ t.target }}_target,
    {%- endfor %}
    coalesce(days >= {{ var('min_days') }} and wear_pct >= {{ var('low_wear_pct') }}, false)
        as meets_wear_target
{%- endmacro %}
