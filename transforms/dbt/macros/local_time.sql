{#- The configured timezone as a SQL literal (an IANA name; quotes are escaped). -#}
{% macro timezone_literal() -%}
    '{{ var("timezone", "UTC") | string | replace("'", "''") }}'
{%- endmacro %}

{#- A timestamptz as naive local wall-clock time in the configured timezone. -#}
{% macro to_local(ts) -%}
    timezone({{ timezone_literal() }}, {{ ts }})
{%- endmacro %}

{#- Minutes in a local day (1380 or 1500 on DST changes, otherwise 1440). -#}
{% macro minutes_in_local_day(day) -%}
    (epoch(timezone({{ timezone_literal() }}, ({{ day }} + 1)::timestamp))
     - epoch(timezone({{ timezone_literal() }}, ({{ day }})::timestamp))) / 60
{%- endmacro %}
