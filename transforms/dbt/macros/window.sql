{#-
  The window a run rebuilds: vars start_date / end_date, local dates, end exclusive.
  Either may be absent (open side); both absent means everything.
-#}

{% macro window_dates(before_days=0, after_days=0) %}
    {%- set bounds = {} -%}
    {%- for side in ['start_date', 'end_date'] -%}
        {%- set value = var(side, none) -%}
        {%- if value is not none and value | string | trim not in ('', 'None', 'none', 'null') -%}
            {%- set parsed = modules.datetime.date.fromisoformat(value | string | trim) -%}
            {%- set shift = -before_days if side == 'start_date' else after_days -%}
            {%- do bounds.update({side: parsed + modules.datetime.timedelta(days=shift)}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(bounds) }}
{% endmacro %}

{#- A predicate on a local-date column: the window widened by whole days on either side. -#}
{% macro window_filter(column, before_days=0, after_days=0) -%}
    {%- set bounds = window_dates(before_days, after_days) -%}
    {%- set parts = [] -%}
    {%- if 'start_date' in bounds -%}
        {%- do parts.append(column ~ " >= date '" ~ bounds['start_date'].isoformat() ~ "'") -%}
    {%- endif -%}
    {%- if 'end_date' in bounds -%}
        {%- do parts.append(column ~ " < date '" ~ bounds['end_date'].isoformat() ~ "'") -%}
    {%- endif -%}
    {{- parts | join(' and ') if parts else 'true' -}}
{%- endmacro %}

{#-
  The same window as a predicate on an epoch-millisecond column, with integer literals so that
  the lake prunes files and row groups by their statistics. Local dates are widened by 14 hours
  on both sides (no UTC offset is larger), so callers still filter exactly on the local date.
-#}
{% macro window_ms_filter(column, before_days=0, after_days=0) -%}
    {%- set bounds = window_dates(before_days, after_days) -%}
    {%- set epoch = modules.datetime.date(1970, 1, 1) -%}
    {%- set margin_ms = 14 * 3600 * 1000 -%}
    {%- set parts = [] -%}
    {%- if 'start_date' in bounds -%}
        {%- set start_ms = (bounds['start_date'] - epoch).days * 86400000 - margin_ms -%}
        {%- do parts.append(column ~ " >= " ~ start_ms) -%}
    {%- endif -%}
    {%- if 'end_date' in bounds -%}
        {%- set end_ms = (bounds['end_date'] - epoch).days * 86400000 + margin_ms -%}
        {%- do parts.append(column ~ " < " ~ end_ms) -%}
    {%- endif -%}
    {{- parts | join(' and ') if parts else 'true' -}}
{%- endmacro %}
